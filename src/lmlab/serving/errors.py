"""OpenAI-style API errors: `{"error": {"message", "type", "param", "code"}}` with the HTTP status that fits."""

from __future__ import annotations

from fastapi.responses import JSONResponse

# HTTP status → OpenAI's error `type` (the official clients map the status to an exception class).
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          503: "service_unavailable"}


class ApiError(Exception):
    """An error answered to the client as JSON; `param` names the request field or limit at fault."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": _TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)
