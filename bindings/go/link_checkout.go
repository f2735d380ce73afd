//go:build !microloop_prebuilt

package microloop

// In a checkout: the header from include/ and the shared library `make lib` built (cargo).
// With -tags microloop_prebuilt, link_prebuilt.go links a prebuilt static library instead.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../native/target/release -lmicroloop -Wl,-rpath,${SRCDIR}/../../native/target/release
*/
import "C"
