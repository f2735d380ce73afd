// Package microloop checks every tool call of an AI agent before it runs: it blocks loops (the
// same call again and again with the same answer, the same error retried, A-B-A-B cycles),
// hallucinated tools and runaway budgets, and checks arguments against a policy.
//
// It calls the MicroLoop C library (libmicroloop) through cgo; every language's binding runs the
// same engine and gives the same verdicts.
//
//	s, err := microloop.NewSession("balanced")
//	if err != nil { ... }
//	defer s.Close()
//	v, err := s.Check("open_page", []byte(`{"url": "https://example.com"}`))
//	if v.MayRun() {
//		out, failed := runTool()
//		s.Record(v.CallID, out, failed)
//	} else {
//		// give v.Message to the model instead of a result
//	}
//
// A Session is safe for use by many goroutines at once.
package microloop

/*
#include <stdlib.h>
#include "microloop.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// ABIVersion is the C ABI this package was written against; the package panics at init when
// the loaded library reports another, since calls would then be undefined.
const ABIVersion = 2

func init() {
	if got := uint32(C.ml_abi_version()); got != ABIVersion {
		panic(fmt.Sprintf("microloop: libmicroloop has ABI version %d, this package needs %d", got, ABIVersion))
	}
}

// headerABIVersion is include/microloop.h's ML_ABI_VERSION: a test checks it equals ABIVersion.
const headerABIVersion = C.ML_ABI_VERSION

// cgoNoop crosses into the library for nothing: BenchmarkCgoCall measures the bare crossing.
func cgoNoop() { C.ml_abi_version() }

// Version is the loaded library's version, "MAJOR.MINOR.PATCH".
func Version() string {
	return C.GoString(C.ml_version_string())
}

// Action is what to do with a checked call.
type Action int32

const (
	Allow Action = C.ML_ACTION_ALLOW // run the call
	Warn  Action = C.ML_ACTION_WARN  // run it, and show Message to the model with its result
	Block Action = C.ML_ACTION_BLOCK // don't run it; give Message to the model instead
	Halt  Action = C.ML_ACTION_HALT  // don't run it; stop the run
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Warn:
		return "warn"
	case Block:
		return "block"
	case Halt:
		return "halt"
	}
	return fmt.Sprintf("Action(%d)", int32(a))
}

// Verdict is the decision on one call.
type Verdict struct {
	Action Action
	// Rule is the deciding rule's id ("loop.no_progress", a policy rule's id); empty for Allow.
	Rule string
	// Message is written for the model; empty for Allow.
	Message string
	// CallID is the id to pass to Record; 0 when the call must not run.
	CallID uint64
	// Count: for Allow, how many times this exact call already ran in the window; otherwise the
	// count the deciding rule reached.
	Count uint32
	// Approval is, under a policy with an [approval] section, the token of a call that may run: a
	// compact JWS the tool server checks (package approval). Empty otherwise.
	Approval string
	// ApprovalError says why a call that may run under [approval] has no token (its arguments
	// have no RFC 8785 canonical form); empty otherwise.
	ApprovalError string
	// Observed is, under a policy with mode = "observe" (shadow mode), the action an enforcing
	// guard would have taken (Warn, Block or Halt) on a call that is let run: Action is then
	// Allow, and Rule, Message and Count are the would-be verdict's. Allow otherwise.
	Observed Action
}

// MayRun tells whether the tool may run (Allow or Warn).
func (v Verdict) MayRun() bool { return v.Action == Allow || v.Action == Warn }

// Stats are a session's counters.
type Stats struct {
	Calls       uint64 // calls allowed to run
	Blocked     uint64 // calls blocked or halted
	Errors      uint64 // results recorded as errors
	HistoryLen  uint64 // calls in the history window now
	HistoryHash uint64 // a hash of the whole history: unchanged by a call that did not change it
	Results     uint64 // results recorded, late ones included
	Late        uint64 // results recorded after their call had left the window
	Observed    uint64 // shadow mode: calls let run although the verdict was warn, block or halt
}

// Session is one agent run's history of calls under one policy. Create it with NewSession and
// release it with Close (a finalizer frees a forgotten one, at some point). Its methods may be
// called from many goroutines at once; after Close they return ErrClosed.
type Session struct {
	// mu guards ptr: methods hold it shared across their C call, Close exclusively, so the
	// session is never freed under a running call.
	mu  sync.RWMutex
	ptr *C.ml_session
}

// bytesPtr passes a Go byte slice to C without copying: the library never keeps the pointer.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

func stringPtr(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

// NewSession creates a session under a policy: a preset name ("strict", "balanced",
// "permissive"), or a policy document as JSON text; "" means "balanced". A refused policy gives
// an *Error with Status StatusInvalidPolicy whose Path names the bad entry.
func NewSession(policy string) (*Session, error) {
	var ptr *C.ml_session
	var cerr *C.ml_error
	rc := C.ml_session_new(stringPtr(policy), C.size_t(len(policy)), &ptr, &cerr)
	runtime.KeepAlive(policy)
	if rc != C.ML_OK {
		return nil, takeError(rc, cerr)
	}
	return wrapSession(ptr), nil
}

func wrapSession(ptr *C.ml_session) *Session {
	s := &Session{ptr: ptr}
	runtime.SetFinalizer(s, (*Session).free)
	return s
}

// Engine is a compiled policy that any number of sessions share: NewEngine parses the policy and
// compiles its schemas and regexes once, and Engine.NewSession then costs none of that (a
// session per goroutine, conversation or worker). An Engine never changes, so it is safe for use
// by many goroutines at once; sessions hold their own reference to it, so closing the Engine does
// not affect the sessions made from it.
type Engine struct {
	mu  sync.RWMutex // guards ptr as Session.mu does
	ptr *C.ml_engine
}

// NewEngine compiles a policy, given as to NewSession.
func NewEngine(policy string) (*Engine, error) {
	var ptr *C.ml_engine
	var cerr *C.ml_error
	rc := C.ml_engine_new(stringPtr(policy), C.size_t(len(policy)), &ptr, &cerr)
	runtime.KeepAlive(policy)
	if rc != C.ML_OK {
		return nil, takeError(rc, cerr)
	}
	e := &Engine{ptr: ptr}
	runtime.SetFinalizer(e, (*Engine).free)
	return e, nil
}

func (e *Engine) free() {
	e.mu.Lock()
	defer e.mu.Unlock()
	C.ml_engine_free(e.ptr)
	e.ptr = nil
}

// Close releases the engine; sessions made from it keep working. Closing twice is a no-op; calls
// after Close return ErrClosed.
func (e *Engine) Close() error {
	runtime.SetFinalizer(e, nil)
	e.free()
	return nil
}

// NewSession creates a session under the engine's policy, with an empty history.
func (e *Engine) NewSession() (*Session, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ptr == nil {
		return nil, ErrClosed
	}
	var ptr *C.ml_session
	var cerr *C.ml_error
	if rc := C.ml_session_new_from_engine(e.ptr, &ptr, &cerr); rc != C.ML_OK {
		return nil, takeError(rc, cerr)
	}
	return wrapSession(ptr), nil
}

// LoadSession creates a session from Session.Save's bytes under the engine's policy; it gives
// exactly the verdicts the saved session would have given. Bytes saved under another policy are
// refused (StatusPolicyMismatch) unless anyPolicy; bytes that are not a snapshot, corrupt or
// truncated give StatusInvalidSnapshot, a snapshot of a newer MicroLoop StatusSnapshotVersion.
func (e *Engine) LoadSession(snapshot []byte, anyPolicy bool) (*Session, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ptr == nil {
		return nil, ErrClosed
	}
	var flags C.uint32_t
	if anyPolicy {
		flags = C.ML_LOAD_ANY_POLICY
	}
	var ptr *C.ml_session
	var cerr *C.ml_error
	rc := C.ml_session_load(e.ptr, bytesPtr(snapshot), C.size_t(len(snapshot)), flags, &ptr, &cerr)
	runtime.KeepAlive(snapshot)
	if rc != C.ML_OK {
		return nil, takeError(rc, cerr)
	}
	return wrapSession(ptr), nil
}

// Fingerprint is the fingerprint a session under this engine keeps for a call: as the package's
// Fingerprint, with the fields the policy's ignore_fields names left out.
func (e *Engine) Fingerprint(tool string, args []byte) (uint64, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ptr == nil {
		return 0, ErrClosed
	}
	return fingerprint(e.ptr, tool, args)
}

func (s *Session) free() {
	s.mu.Lock()
	defer s.mu.Unlock()
	C.ml_session_free(s.ptr)
	s.ptr = nil
}

// Close frees the session. Closing twice is a no-op; calls after Close return ErrClosed.
func (s *Session) Close() error {
	runtime.SetFinalizer(s, nil)
	s.free()
	return nil
}

// acquire holds the session open for one C call; release with s.mu.RUnlock().
func (s *Session) acquire() (*C.ml_session, error) {
	s.mu.RLock()
	if s.ptr == nil {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.ptr, nil
}

// Check decides on a tool call before it runs: tool is the tool's name, args its arguments as
// JSON text. When the verdict MayRun, run the tool and report its result with Record under
// v.CallID. A blocked or halted call leaves the history unchanged. Errors (*Error):
// StatusInvalidJSON, StatusInvalidUTF8, StatusInvalidArgument (an empty tool name).
func (s *Session) Check(tool string, args []byte) (Verdict, error) {
	ptr, err := s.acquire()
	if err != nil {
		return Verdict{}, err
	}
	defer s.mu.RUnlock()
	var v C.ml_verdict
	v.size = C.size_t(unsafe.Sizeof(v))
	var cerr *C.ml_error
	rc := C.ml_check_call(ptr, stringPtr(tool), C.size_t(len(tool)), bytesPtr(args), C.size_t(len(args)), &v, &cerr)
	runtime.KeepAlive(tool)
	runtime.KeepAlive(args)
	runtime.KeepAlive(s)
	if rc != C.ML_OK {
		return Verdict{}, takeError(rc, cerr)
	}
	out := Verdict{Action: Action(v.action), CallID: uint64(v.call_id), Count: uint32(v.count), Observed: Action(v.observed)}
	if v.rule != nil {
		out.Rule = C.GoStringN(v.rule, C.int(v.rule_len))
	}
	if v.message != nil {
		out.Message = C.GoStringN(v.message, C.int(v.message_len))
	}
	if v.approval != nil {
		out.Approval = C.GoStringN(v.approval, C.int(v.approval_len))
	}
	if v.approval_error != nil {
		out.ApprovalError = C.GoStringN(v.approval_error, C.int(v.approval_error_len))
	}
	C.ml_verdict_clear(&v)
	return out, nil
}

// CheckJSON is Check with the arguments marshalled from any value by encoding/json.
func (s *Session) CheckJSON(tool string, args any) (Verdict, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return Verdict{}, err
	}
	return s.Check(tool, b)
}

// Record reports what an allowed call returned: its output (JSON is compared as JSON, anything
// else as bytes after volatile parts are masked) and whether it failed. Results may be recorded
// in any order; one that comes after its call has left the history window is accepted as late
// (Stats.Late). Errors (*Error): StatusUnknownCall (id 0, or never issued), StatusAlreadyRecorded.
func (s *Session) Record(callID uint64, output []byte, isError bool) error {
	ptr, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var cerr *C.ml_error
	rc := C.ml_record_result(ptr, C.uint64_t(callID), bytesPtr(output), C.size_t(len(output)), C.bool(isError), &cerr)
	runtime.KeepAlive(output)
	runtime.KeepAlive(s)
	if rc != C.ML_OK {
		return takeError(rc, cerr)
	}
	return nil
}

// SetTools registers the agent's tool names: a call to any other tool is then blocked with
// rule "tool.unknown", whose message lists these names. No names forgets them.
func (s *Session) SetTools(names ...string) error {
	if names == nil {
		names = []string{}
	}
	b, err := json.Marshal(names)
	if err != nil {
		return err
	}
	return s.SetToolsJSON(b)
}

// SetToolsJSON is SetTools with the names as a JSON array of strings.
func (s *Session) SetToolsJSON(namesJSON []byte) error {
	ptr, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var cerr *C.ml_error
	rc := C.ml_session_set_tools(ptr, bytesPtr(namesJSON), C.size_t(len(namesJSON)), &cerr)
	runtime.KeepAlive(namesJSON)
	runtime.KeepAlive(s)
	if rc != C.ML_OK {
		return takeError(rc, cerr)
	}
	return nil
}

// Reset forgets the history, counters and any halt; keeps the policy and the tool names.
func (s *Session) Reset() error {
	ptr, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var cerr *C.ml_error
	rc := C.ml_session_reset(ptr, &cerr)
	runtime.KeepAlive(s)
	if rc != C.ML_OK {
		return takeError(rc, cerr)
	}
	return nil
}

// Save returns the session as bytes for Engine.LoadSession, in this process or another: its
// history window, counters, registered tool names and any halt (not the policy: the bytes name its
// hash). The session is unchanged.
func (s *Session) Save() ([]byte, error) {
	ptr, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var data *C.uint8_t
	var n C.size_t
	var cerr *C.ml_error
	if rc := C.ml_session_save(ptr, &data, &n, &cerr); rc != C.ML_OK {
		return nil, takeError(rc, cerr)
	}
	defer C.ml_bytes_free(data, n)
	return C.GoBytes(unsafe.Pointer(data), C.int(n)), nil
}

// Stats reads the session's counters.
func (s *Session) Stats() (Stats, error) {
	ptr, err := s.acquire()
	if err != nil {
		return Stats{}, err
	}
	defer s.mu.RUnlock()
	var st C.ml_stats
	st.size = C.size_t(unsafe.Sizeof(st))
	var cerr *C.ml_error
	rc := C.ml_session_stats(ptr, &st, &cerr)
	runtime.KeepAlive(s)
	if rc != C.ML_OK {
		return Stats{}, takeError(rc, cerr)
	}
	return Stats{
		Calls:       uint64(st.calls),
		Blocked:     uint64(st.blocked),
		Errors:      uint64(st.errors),
		HistoryLen:  uint64(st.history_len),
		HistoryHash: uint64(st.history_hash),
		Results:     uint64(st.results),
		Late:        uint64(st.late),
		Observed:    uint64(st.observed),
	}, nil
}

// Fingerprint is the canonical fingerprint of a call, as every binding computes it: key order,
// white space and 1 vs 1.0 do not change it. Every field counts: Engine.Fingerprint leaves out
// the policy's ignore_fields.
func Fingerprint(tool string, args []byte) (uint64, error) {
	return fingerprint(nil, tool, args)
}

func fingerprint(engine *C.ml_engine, tool string, args []byte) (uint64, error) {
	var fp C.uint64_t
	var cerr *C.ml_error
	rc := C.ml_fingerprint(engine, stringPtr(tool), C.size_t(len(tool)), bytesPtr(args), C.size_t(len(args)), &fp, &cerr)
	runtime.KeepAlive(tool)
	runtime.KeepAlive(args)
	if rc != C.ML_OK {
		return 0, takeError(rc, cerr)
	}
	return uint64(fp), nil
}
