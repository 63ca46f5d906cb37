"""What a wechatpy user writes: check, decrypt, parse, echo the text, encrypt the reply.

The shape of wechatpy's own example (examples/echo-encrypted), with the account of the
benchmarks; ``gunicorn bench.wechatpy_app:app``. No deduplication, no deadline, no log line:
the handler runs on the request's thread, once per attempt.
"""

from flask import Flask, Response, request
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bench.account import AES_KEY, APPID, TOKEN

crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
app = Flask(__name__, static_folder=None)


@app.post("/wx")
def callback() -> Response:
    args = request.args
    try:
        check_signature(TOKEN, args["signature"], args["timestamp"], args["nonce"])
        xml = crypto.decrypt_message(
            request.get_data(), args["msg_signature"], args["timestamp"], args["nonce"]
        )
    except (InvalidSignatureException, InvalidAppIdException):
        return Response(b"forbidden", status=403)
    message = parse_message(xml)
    reply = create_reply(message.content, message).render()
    body = crypto.encrypt_message(reply, args["nonce"], args["timestamp"])
    return Response(body, mimetype="application/xml")
