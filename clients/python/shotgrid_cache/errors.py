"""Errors: one class per Connect code, all under CacheError.

The server's Connect error body is {"code": "not_found", "message": "..."}; the class tells the
code apart without string compares, and `code` / `message` keep the server's words.
"""


class CacheError(Exception):
    """An error from shotgrid-cache, or from reaching it.

    code: the Connect code ("not_found", "unavailable", ...).
    message: the server's message (or what went wrong on the way to it).
    unreachable: True when the service itself could not be reached (connection refused, reset,
    timed out): the cases a snapshot fallback answers. False for every answer the server sent.
    """

    code = "unknown"

    def __init__(self, message, code=None, unreachable=False):
        Exception.__init__(self, message)
        if code is not None:
            self.code = code
        self.message = message
        self.unreachable = unreachable

    def __str__(self):
        return "%s: %s" % (self.code, self.message)


class Canceled(CacheError):
    code = "canceled"


class Unknown(CacheError):
    code = "unknown"


class InvalidArgument(CacheError):
    code = "invalid_argument"


class DeadlineExceeded(CacheError):
    code = "deadline_exceeded"


class NotFound(CacheError):
    code = "not_found"


class AlreadyExists(CacheError):
    code = "already_exists"


class PermissionDenied(CacheError):
    code = "permission_denied"


class ResourceExhausted(CacheError):
    code = "resource_exhausted"


class FailedPrecondition(CacheError):
    code = "failed_precondition"


class Aborted(CacheError):
    code = "aborted"


class OutOfRange(CacheError):
    code = "out_of_range"


class Unimplemented(CacheError):
    code = "unimplemented"


class Internal(CacheError):
    code = "internal"


class Unavailable(CacheError):
    code = "unavailable"


class DataLoss(CacheError):
    code = "data_loss"


class Unauthenticated(CacheError):
    code = "unauthenticated"


_BY_CODE = dict(
    (cls.code, cls)
    for cls in (
        Canceled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
)

# The Connect protocol's mapping for answers that carry no Connect error body (a proxy's page,
# a server that is not shotgrid-cache).
_BY_HTTP_STATUS = {
    400: "internal",
    401: "unauthenticated",
    403: "permission_denied",
    404: "unimplemented",
    408: "deadline_exceeded",
    429: "unavailable",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}


def error_for(code, message, unreachable=False):
    """The CacheError subclass for a Connect code (Unknown for a code this client does not know)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return Unknown(message, code=code, unreachable=unreachable)
    return cls(message, unreachable=unreachable)


def code_for_http_status(status):
    return _BY_HTTP_STATUS.get(status, "unknown")
