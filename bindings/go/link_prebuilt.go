//go:build microloop_prebuilt

package microloop

// With -tags microloop_prebuilt: the header and the static library this module carries in
// include/ and lib/<GOOS>-<GOARCH>/ (`make go-prebuilt` puts them there; a release commits them),
// so no cargo is needed, as wasmtime-go vendors its build/. The library is built for glibc 2.17
// (zig), so the program runs on any newer glibc; it needs nothing at run time.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux-amd64/libmicroloop.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
*/
import "C"
