"""shotgrid_cache: a client for shotgrid-cache with no dependencies (Python 3.7+).

    from shotgrid_cache import CacheClient
    sg = CacheClient("http://localhost:8080")
    shot = sg.find_one("Shot", [["code", "is", "NLT_010_0010"]], ["code", "sg_status_list"])
"""
from .client import CacheClient, Freshness
from .errors import (
    Aborted,
    AlreadyExists,
    CacheError,
    Canceled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from .values import convert_filters
from .watch import Change, Heartbeat, Resync

__version__ = "0.1.0"

__all__ = [
    "CacheClient",
    "Freshness",
    "Change",
    "Heartbeat",
    "Resync",
    "convert_filters",
    "CacheError",
    "Aborted",
    "AlreadyExists",
    "Canceled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
]
