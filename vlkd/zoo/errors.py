"""The errors the model zoo raises; each message says what is wrong and what to do."""


class ZooError(Exception):
    """Base class of every model zoo error."""


class ManifestError(ZooError, ValueError):
    """A manifest file is missing, unreadable or has an invalid entry."""


class UnknownModelError(ZooError, LookupError):
    """A name that no manifest entry has."""


class DownloadError(ZooError):
    """Every mirror of an entry failed; ``failures`` holds ``(url, reason)`` pairs."""

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)


class ChecksumError(DownloadError):
    """Every mirror delivered a file, and none had the sha256 of the manifest."""


class OfflineError(ZooError):
    """Offline mode is on and the file is not in the cache."""


class UnverifiedError(ZooError):
    """The manifest gives no sha256 and the user did not allow unverified files."""
