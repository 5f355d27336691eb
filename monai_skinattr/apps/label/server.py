"""
MONAI Label's web app (``monailabel.app:app``) answering requests a client got wrong with a 4xx and a message:
MONAI Label's own not-found and invalid-input errors, which it otherwise answers ``500 Internal Server Error``, and
``/infer`` without any image, which it answers 500; and ``GET /train/`` after a restart reports a training the
restart interrupted (``INTERRUPTED``) instead of 404. ``/infer`` and ``/activelearning`` run in worker threads, so
one slow request does not stall the others. Start the server with it:

.. code-block:: bash

    monailabel start_server --app <app dir> --studies studies --conf bundle bundles/tatl \\
        --uvicorn_app monai_skinattr.apps.label.server:app
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from monailabel.app import app
from monailabel.endpoints import activelearning, infer
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


def in_worker_thread(endpoint: Callable) -> Callable:
    """
    A MONAI Label endpoint declared ``async`` that does all its work synchronously (``/infer``, ``/activelearning``
    in 0.8.5), as a plain function with the same parameters: FastAPI runs those in its thread pool, so the event loop
    keeps answering other requests (``/info``, the datastore, other maps) while it works.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(endpoint(*args, **kwargs))

    run.__signature__ = inspect.signature(endpoint)  # not functools.wraps: FastAPI would unwrap it to the coroutine
    run.__name__, run.__doc__ = endpoint.__name__, endpoint.__doc__
    return run


def serve_in_worker_threads(router: APIRouter, endpoint: Callable) -> None:
    """Replace ``router``'s route of ``endpoint`` by the same route running :func:`in_worker_thread`."""
    i = next(i for i, r in enumerate(router.routes) if getattr(r, "endpoint", None) is endpoint)
    old = router.routes[i]
    path = old.path.removeprefix(router.prefix)
    router.add_api_route(path, in_worker_thread(endpoint), methods=sorted(old.methods), summary=old.summary)
    router.routes[i] = router.routes.pop()


serve_in_worker_threads(infer.router, infer.api_run_inference)
serve_in_worker_threads(activelearning.router, activelearning.api_sample)
app.add_exception_handler(MONAILabelException, monailabel_error)
app.add_exception_handler(HTTPException, http_error)
app.middleware("http")(interrupted_training)
