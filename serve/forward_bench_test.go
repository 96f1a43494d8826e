package serve_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkIntegrationForwardPointRead measures point reads over loopback
// at instance A of a two-member group, tracing on: "direct" for keys A
// holds, "forwarded" for keys B holds (A proxies them to B), each with 1
// and 32 concurrent clients; p50 and p99 are reported per request, with
// the throughput and the process's CPU per request and share of the wall
// time (cpu-%: 200 is both cores of a 2-core machine).
//
//	go test -run '^$' -bench ForwardPointRead -benchtime 3000x ./serve/
func BenchmarkIntegrationForwardPointRead(b *testing.B) {
	const partitions = 4
	brokers := kafkatest.Brokers(b)
	input, group := kafkatest.Topic(b, "fwdb-in"), kafkatest.Group(b, "fwdb")
	kafkatest.CreateTopic(b, brokers, input, partitions)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	a := startInstance(b, brokers, input, group, true, tp)
	o := startInstance(b, brokers, input, group, true, tp)
	kafkatest.WaitFor(b, 2*time.Minute, "the partitions split over two restored members", func() bool {
		na, no := len(a.reader.Served()), len(o.reader.Served())
		return na > 0 && no > 0 && na+no == partitions
	})
	keys := kafkatest.KeysCovering(b, partitions, func(i int) string { return fmt.Sprintf("acct-%d", i) })
	em, err := processors.NewEmitter(b.Context(), input, processors.WithKafka(kafkaclient.Config{Brokers: brokers}))
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		em.Emit(k, []byte("x"), nil)
	}
	if err := em.Close(); err != nil {
		b.Fatal(err)
	}
	kafkatest.WaitFor(b, time.Minute, "the records processed", func() bool {
		return a.rt.Tally().Processed()+o.rt.Tally().Processed() == partitions
	})
	var own, other string
	for p, k := range keys {
		if a.owns(int32(p)) {
			own = k
		} else {
			other = k
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct {
		name, key string
		servedBy  string
	}{{"direct", own, ""}, {"forwarded", other, o.url}} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/clients=%d", c.name, clients), func(b *testing.B) {
				url := a.url + "/tables/" + group + "/" + c.key
				get := func() (*http.Response, error) {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+forwardToken)
					resp, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					return resp, err
				}
				// Warm up, not timed: every client's connection open (and
				// A's forwarding connections and owners known), so that the
				// figures are those of clients that keep their connections,
				// not of 32 TCP handshakes at once.
				var warm sync.WaitGroup
				for range clients {
					warm.Go(func() {
						if _, err := get(); err != nil {
							b.Error(err)
						}
					})
				}
				warm.Wait()
				lat := make([]time.Duration, b.N)
				var next sync.Mutex
				i := 0
				var wg sync.WaitGroup
				b.ResetTimer()
				wall0, cpu0 := time.Now(), processCPU()
				for range clients {
					wg.Go(func() {
						for {
							next.Lock()
							n := i
							i++
							next.Unlock()
							if n >= b.N {
								return
							}
							start := time.Now()
							resp, err := get()
							if err != nil {
								b.Error(err)
								return
							}
							lat[n] = time.Since(start)
							if resp.StatusCode != 200 || resp.Header.Get(serve.HeaderServedBy) != c.servedBy {
								b.Errorf("%s: %d served by %q", c.key, resp.StatusCode, resp.Header.Get(serve.HeaderServedBy))
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				wall, cpu := time.Since(wall0), processCPU()-cpu0
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
				// The CPU the process (clients, both instances, the embedded
				// broker) used per request, and the share of the wall time
				// it got (200% is both cores of a 2-core machine): on a
				// shared machine, how much of the latency is waiting for a
				// core.
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
				b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
			})
		}
	}
}
