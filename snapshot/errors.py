"""The error codes of the SubmitSnapshotJob contract (docs/contract.md#error-codes)."""

JSON_FORMAT_INVALID = "InvalidParameter.JsonFormatInvalid"
JSON_OBJECT_FORMAT_INVALID = "InvalidParameter.JsonObjectFormatInvalid"
NULL_VALUE = "InvalidParameter.NullValue"
INVALID_PARAMETER = "InvalidParameter"
OUT_OF_RANGE = "InvalidParameter.OutOfRange"
TIME_ARRAY = "InvalidParameter.TimeArray"
RESOURCE_NOT_FOUND = "InvalidParameter.ResourceNotFound"
RESOURCE_CONTENT_BAD = "InvalidParameter.ResourceContentBad"
PERMISSION_DENIED = "PermissionDenied.ResourceAccess"
ENTITY_NOT_EXIST_ROLE = "EntityNotExist.Role"
SNAPSHOT_TIMEOUT = "SnapshotTimeOut"
TRANSIENT_NETWORK_ERROR = "TransientNetWorkError"
STORAGE_FULL = "StorageFull"  # ext: the output storage has no room (a full disk, a file-size or quota limit)
INTERNAL_ERROR = "InternalError"


class SnapshotError(Exception):
    """A job failure with its documented code and a short, user-facing message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):
        return (SnapshotError, (self.code, self.message))
