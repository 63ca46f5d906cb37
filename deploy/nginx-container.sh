#!/bin/sh
# Installs the nginx kit in compose.yaml's nginx container. The official nginx image runs
# /docker-entrypoint.d/*.sh before it starts nginx; compose.yaml mounts deploy/ at
# /etc/nginx/wx-push and this file as /docker-entrypoint.d/40-wx-push.sh. What differs from a
# host install (deploy/README.md, step 3):
# - gunicorn is the "app" service, not 127.0.0.1:8000;
# - the logs go to the container's stdout and stderr: docker compose logs nginx;
# - the https server is installed only once certbot has put the certificate where
#   nginx-https.conf names it, so the first start serves port 80 (and the ACME challenge)
#   alone, and `docker compose restart nginx` after certbot adds https.
set -eu

kit=${WX_NGINX_KIT:-/etc/nginx/wx-push}
conf_d=${WX_NGINX_CONF_D:-/etc/nginx/conf.d}
upstream=${WX_UPSTREAM:-app:8000}

site() {
    sed -e "s|server 127.0.0.1:8000;|server $upstream;|" \
        -e "s|/etc/nginx/wx-push-proxy.conf|$kit/wx-push-proxy.conf|" \
        -e "s|/var/log/nginx/wx-push.access.log|/dev/stdout|" \
        -e "s|/var/log/nginx/wx-push.error.log|/dev/stderr|" \
        "$kit/$1" >"$conf_d/$2"
}

rm -f "$conf_d/default.conf" # the image's welcome page
site nginx.conf wx-push-http.conf
certificate=$(sed -n 's/^ *ssl_certificate  *\([^ ;]*\);.*/\1/p' "$kit/nginx-https.conf")
if [ -f "$certificate" ]; then
    site nginx-https.conf wx-push-https.conf
else
    rm -f "$conf_d/wx-push-https.conf"
    echo "$0: no certificate at $certificate yet: serving port 80 only" >&2
fi
