"""
MONAI Label's web app (``monailabel.app:app``) answering requests a client got wrong with a 4xx and a message:
MONAI Label's own not-found and invalid-input errors, which it otherwise answers ``500 Internal Server Error``, and
``/infer`` without any image, which it answers 500; and ``GET /train/`` after a restart reports a training the
restart interrupted (``INTERRUPTED``) instead of 404. Start the server with it:

.. code-block:: bash

    monailabel start_server --app <app dir> --studies studies --conf bundle bundles/tatl \\
        --uvicorn_app monai_skinattr.apps.label.server:app
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from monailabel.app import app
from monailabel.interfaces.exception import (
    ImageNotFoundException,
    LabelNotFoundException,
    MONAILabelError,
    MONAILabelException,
)
from monailabel.interfaces.utils.app import app_instance
from starlette.exceptions import HTTPException

__all__ = ["app"]

#: the detail of the 500 MONAI Label 0.8.5's ``/infer`` raises for a request naming no image, file or session
NO_INPUT = "Neither Image nor File not Session ID input is provided"


async def monailabel_error(request: Request, exc: MONAILabelException) -> JSONResponse:
    """MONAI Label's errors with their message: not found 404, invalid input 400, anything else 500."""
    if isinstance(exc, (ImageNotFoundException, LabelNotFoundException)):
        status = 404
    else:
        status = 400 if exc.error == MONAILabelError.INVALID_INPUT else 500
    return JSONResponse({"detail": exc.msg}, status_code=status)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """FastAPI's answer to an ``HTTPException``, except that a request without an image is the client's: 400."""
    if exc.status_code == 500 and exc.detail == NO_INPUT:
        exc = HTTPException(400, "no image: name a datastore image (?image=<id>) or upload the photo as 'file'")
    return await http_exception_handler(request, exc)


async def interrupted_training(request: Request, call_next) -> Response:
    """``GET /train/`` that MONAI Label answers 404 (no training since the server started): the training a crash or
    kill ended before, if there was one, as ``{"status": "INTERRUPTED", ...}`` (its start, options and process)."""
    response = await call_next(request)
    asks_status = request.method == "GET" and request.url.path.rstrip("/") == "/train"
    if response.status_code != 404 or not asks_status or request.query_params.get("check_if_running") == "true":
        return response
    trainers = app_instance()._trainers.items()
    lost = [{"name": n, **r} for n, task in trainers if (r := getattr(task, "interrupted", lambda: None)())]
    if not lost:
        return response
    return JSONResponse({**lost[-1], "status": "INTERRUPTED", "details": ["the server stopped during this training"]})


app.add_exception_handler(MONAILabelException, monailabel_error)
app.add_exception_handler(HTTPException, http_error)
app.middleware("http")(interrupted_training)
