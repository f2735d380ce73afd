package microloop

import (
	"strconv"
	"testing"
)

// BenchmarkCheck is the cost of one Check as a Go caller sees it, cgo crossing included: each
// call has new arguments, so the history does not block it, as in a real agent run.
func BenchmarkCheck(b *testing.B) {
	s := newSession(b, `{"budget": {"max_calls_per_minute": 1000000000}}`)
	args := make([][]byte, 1024)
	for i := range args {
		args[i] = []byte(`{"query": "microloop benchmark", "page": ` + strconv.Itoa(i) + `}`)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Check("search", args[i%len(args)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckParallel is Check from GOMAXPROCS goroutines on one session.
func BenchmarkCheckParallel(b *testing.B) {
	s := newSession(b, `{"budget": {"max_calls_per_minute": 1000000000}}`)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.Check("search", []byte(`{"page": `+strconv.Itoa(i)+`}`)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCgoCall is the bare cost of crossing into the library: a call that does no work.
func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cgoNoop()
	}
}
