package processors

import (
	"fmt"

	"github.com/lovoo/goka"
)

// Handler processes one decoded input record.
type Handler[T any] func(ctx goka.Context, msg T) error

// Decoder turns the raw bytes of an input record into a message.
type Decoder[T any] func(data []byte) (T, error)

// Handle returns a goka callback for an input whose codec is codec.Bytes:
// it decodes the record with decode and calls h. A decoding error or a
// Rejection returned by h rejects the record (counted and logged by tally)
// and processing goes on; any other error from h fails the processor, as
// goka does. Handlers must not panic: goka stops the processor on a panic.
func Handle[T any](decode Decoder[T], h Handler[T], tally *Tally) goka.ProcessCallback {
	return func(ctx goka.Context, raw any) {
		data, _ := raw.([]byte)
		msg, err := decode(data)
		if err != nil {
			tally.Reject(ctx, &Rejection{Reason: "decode", Err: err})
			return
		}
		if err := h(ctx, msg); err != nil {
			if rej, ok := AsRejection(err); ok {
				tally.Reject(ctx, rej)
				return
			}
			ctx.Fail(fmt.Errorf("process %s/%d@%d: %w", ctx.Topic(), ctx.Partition(), ctx.Offset(), err))
		}
		tally.processed.Add(1)
	}
}
