"""Error types. Every user-facing failure is one of these, with a one-line message."""


class TamError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits non-zero."""


class VideoError(TamError):
    """A source cannot be opened or decoded (missing, not a video, corrupt, empty)."""


class MaskError(TamError):
    """A mask is missing, empty where it must not be, or of the wrong size."""


class PromptError(TamError):
    """A click or box is malformed or lies outside the frame."""


class BackendError(TamError):
    """A backend is unknown, unavailable here, or lacks its weights."""


class OutputError(TamError):
    """An output cannot be written (missing or read-only directory)."""


class Cancelled(TamError):
    """Long work was cancelled by the caller."""


def brief(e: Exception, limit: int = 200) -> str:
    """``e`` as one short line for a user: an OS or FFmpeg error's reason without its errno or file path."""
    reason = getattr(e, "strerror", None)
    text = reason.strip() if isinstance(reason, str) and reason.strip() else str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]
