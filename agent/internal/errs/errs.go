// Package errs carries the protocol's error codes from the packages that
// detect a condition to the HTTP layer that renders the error envelope.
package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

const (
	InvalidRequest  = "invalid_request"
	NotFound        = "not_found"
	Conflict        = "conflict"
	PayloadTooLarge = "payload_too_large"
	Unauthorized    = "unauthorized"
	Internal        = "internal"
)

// Error is an error with a protocol code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func Invalid(format string, args ...any) *Error   { return New(InvalidRequest, format, args...) }
func NotFoundf(format string, args ...any) *Error { return New(NotFound, format, args...) }
func Conflictf(format string, args ...any) *Error { return New(Conflict, format, args...) }

// Classify maps any error to a protocol code; filesystem errnos get the
// closest code so callers need not translate every os error by hand.
func Classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return New(NotFound, "%s", err.Error())
	case errors.Is(err, fs.ErrExist), errors.As(err, &errno) && errno == syscall.ENOTEMPTY:
		return New(Conflict, "%s", err.Error())
	case errors.As(err, &errno) && (errno == syscall.ENOTDIR || errno == syscall.EISDIR ||
		errno == syscall.EINVAL || errno == syscall.ELOOP || errno == syscall.EXDEV ||
		errno == syscall.ENAMETOOLONG || errno == syscall.EACCES || errno == syscall.EPERM ||
		errno == syscall.EROFS):
		return New(InvalidRequest, "%s", err.Error())
	}
	return New(Internal, "%s", err.Error())
}
