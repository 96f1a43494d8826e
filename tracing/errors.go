package tracing

import (
	"errors"
	"reflect"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// RecordError marks span as failed with err: status Error, an exception
// event and error.type (see ErrorType).
func RecordError(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	RecordErrorType(span, err, ErrorType(err))
}

// RecordErrorType is RecordError with an error.type chosen by the caller,
// such as a rejection's reason ("decode").
func RecordErrorType(span trace.Span, err error, errorType string) {
	if !span.IsRecording() {
		return
	}
	if errorType == "" {
		errorType = semconv.ErrorTypeOther.Value.AsString()
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.ErrorTypeKey.String(errorType))
}

// ErrorType returns the error.type weft records for err (the OTel semantic
// conventions' low-cardinality class of the error):
//
//   - the ErrorType() string of the first error in err's chain that has
//     such a method (the convention semconv.ErrorType follows too);
//   - otherwise the package-qualified type name of the first error in the
//     chain (depth first) that is not a plain message or wrapper (errors.New,
//     fmt.Errorf, errors.Join), e.g. "net.OpError" or
//     "github.com/IBM/sarama.KError";
//   - otherwise "_OTHER".
func ErrorType(err error) string {
	var typed interface{ ErrorType() string }
	if errors.As(err, &typed) {
		if s := typed.ErrorType(); s != "" {
			return s
		}
	}
	if name := firstTypeName(err); name != "" {
		return name
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// firstTypeName returns the typeName of the first error in err's chain
// (depth first through errors.Join's branches) that has one.
func firstTypeName(err error) string {
	for err != nil {
		if name := typeName(err); name != "" {
			return name
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if name := firstTypeName(e); name != "" {
					return name
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}

// typeName returns the package-qualified name of err's type, or "" for the
// standard library's plain messages and wrappers and for unnamed types.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg, name := t.PkgPath(), t.Name()
	if pkg == "" || name == "" {
		return ""
	}
	switch pkg + "." + name {
	case "errors.errorString", "errors.joinError", "fmt.wrapError", "fmt.wrapErrors":
		return ""
	}
	return pkg + "." + name
}
