package microloop

/*
#include "microloop.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Status is the library's status code of a failure (ml_status); codes are never renumbered.
type Status int32

const (
	StatusNullArg         Status = C.ML_ERR_NULL_ARG
	StatusInvalidUTF8     Status = C.ML_ERR_INVALID_UTF8
	StatusInvalidJSON     Status = C.ML_ERR_INVALID_JSON
	StatusInvalidPolicy   Status = C.ML_ERR_INVALID_POLICY
	StatusUnknownCall     Status = C.ML_ERR_UNKNOWN_CALL
	StatusAlreadyRecorded Status = C.ML_ERR_ALREADY_RECORDED
	StatusInvalidArgument Status = C.ML_ERR_INVALID_ARG
	StatusInvalidSnapshot Status = C.ML_ERR_INVALID_SNAPSHOT // not a snapshot, corrupt or truncated
	StatusSnapshotVersion Status = C.ML_ERR_SNAPSHOT_VERSION // a snapshot from a newer MicroLoop
	StatusPolicyMismatch  Status = C.ML_ERR_POLICY_MISMATCH  // a snapshot saved under another policy
	StatusPanic           Status = C.ML_ERR_PANIC
)

// String is the library's static text for the code ("invalid JSON", ...).
func (s Status) String() string {
	return C.GoString(C.ml_status_str(C.ml_status(s)))
}

// Error is a failure reported by the library. Compare kinds with errors.Is against the Err*
// values (errors.Is(err, microloop.ErrInvalidPolicy)), or read Status with errors.As.
type Error struct {
	Status  Status
	Message string
	// Path names the bad entry of a refused policy ("tools[2].rules[0].deny_regex"); else "".
	Path string
}

func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("microloop: %s: %s: %s", e.Status, e.Path, e.Message)
	}
	if e.Message == "" {
		return "microloop: " + e.Status.String()
	}
	return fmt.Sprintf("microloop: %s: %s", e.Status, e.Message)
}

// Is matches another *Error of the same Status, so the Err* values work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Values to compare errors with, by status: errors.Is(err, ErrUnknownCall).
var (
	ErrNullArg         = &Error{Status: StatusNullArg}
	ErrInvalidUTF8     = &Error{Status: StatusInvalidUTF8}
	ErrInvalidJSON     = &Error{Status: StatusInvalidJSON}
	ErrInvalidPolicy   = &Error{Status: StatusInvalidPolicy}
	ErrUnknownCall     = &Error{Status: StatusUnknownCall}
	ErrAlreadyRecorded = &Error{Status: StatusAlreadyRecorded}
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrInvalidSnapshot = &Error{Status: StatusInvalidSnapshot}
	ErrSnapshotVersion = &Error{Status: StatusSnapshotVersion}
	ErrPolicyMismatch  = &Error{Status: StatusPolicyMismatch}
	ErrPanic           = &Error{Status: StatusPanic}
)

// ErrClosed is returned by the methods of a closed Session.
var ErrClosed = errors.New("microloop: session is closed")

// takeError turns a failed call's status and ml_error into an *Error and frees the ml_error.
func takeError(rc C.ml_status, cerr *C.ml_error) error {
	e := &Error{Status: Status(rc)}
	if cerr != nil {
		var n C.size_t
		msg := C.ml_error_message(cerr, &n)
		e.Message = C.GoStringN(msg, C.int(n))
		path := C.ml_error_path(cerr, &n)
		e.Path = C.GoStringN(path, C.int(n))
		C.ml_error_free(cerr)
	}
	return e
}
