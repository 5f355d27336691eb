"""
MONAI Label's web app (``monailabel.app:app``) answering requests a client got wrong with a 4xx and a message:
MONAI Label's own not-found and invalid-input errors, which it otherwise answers ``500 Internal Server Error``, and
``/infer`` without any image, which it answers 500. Start the server with it:

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


app.add_exception_handler(MONAILabelException, monailabel_error)
app.add_exception_handler(HTTPException, http_error)
