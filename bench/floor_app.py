"""The floor: a bare Flask endpoint that reads the body and answers "success".

Any Flask service behind WeChat pays at least this; ``gunicorn bench.floor_app:app``.
"""

from flask import Flask, Response, request

app = Flask(__name__, static_folder=None)


@app.post("/wx")
def callback() -> Response:
    request.get_data()
    return Response(b"success", mimetype="text/plain")
