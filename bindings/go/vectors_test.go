package microloop

// Runs every shared test vector (../../tests/vectors/*.json, read at run time) through the Go
// API, as native/ffi/tests/vectors.rs does through the C ABI: same steps, same expectations,
// same invariants. Format: tests/vectors/README.md.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var statusNames = map[string]Status{
	"null_arg":         StatusNullArg,
	"invalid_utf8":     StatusInvalidUTF8,
	"invalid_json":     StatusInvalidJSON,
	"invalid_policy":   StatusInvalidPolicy,
	"unknown_call":     StatusUnknownCall,
	"already_recorded": StatusAlreadyRecorded,
	"invalid_argument": StatusInvalidArgument,
	"invalid_snapshot": StatusInvalidSnapshot,
	"snapshot_version": StatusSnapshotVersion,
	"policy_mismatch":  StatusPolicyMismatch,
	"panic":            StatusPanic,
}

type vector struct {
	Policy      json.RawMessage                 `json:"policy"`
	PolicyError *struct{ Path, Message string } `json:"policy_error"`
	Steps       []map[string]json.RawMessage    `json:"steps"`
}

// compact is a JSON value's text without white space; numbers and strings are kept verbatim.
func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func str(step map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := step[key]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func num(step map[string]json.RawMessage, key string) (uint64, bool) {
	raw, ok := step[key]
	if !ok {
		return 0, false
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false
	}
	return n, true
}

// isError reads a step's "error" flag (false when absent).
func isError(step map[string]json.RawMessage) bool {
	var b bool
	if raw, ok := step["error"]; ok {
		json.Unmarshal(raw, &b)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// argsOf is the argument bytes a call step describes (the first key present wins).
func argsOf(step map[string]json.RawMessage) []byte {
	if t, ok := str(step, "args_text"); ok {
		return []byte(t)
	}
	if h, ok := str(step, "args_hex"); ok {
		return mustHex(h)
	}
	if n, ok := num(step, "args_nested"); ok {
		return append(bytes.Repeat([]byte("["), int(n)), bytes.Repeat([]byte("]"), int(n))...)
	}
	if n, ok := num(step, "args_big"); ok {
		b := bytes.Repeat([]byte("x"), int(n))
		copy(b, `{"data":"`)
		copy(b[n-2:], `"}`)
		return b
	}
	if raw, ok := step["args"]; ok {
		return compact(raw)
	}
	return []byte("{}")
}

// resultOf is a step's result: a string as its bytes, anything else as JSON.
func resultOf(step map[string]json.RawMessage) ([]byte, bool) {
	raw, ok := step["result"]
	if !ok {
		return nil, false
	}
	if s, ok := str(step, "result"); ok {
		return []byte(s), true
	}
	return compact(raw), true
}

func history(t *testing.T, s *Session) [2]uint64 {
	st, err := s.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return [2]uint64{st.HistoryLen, st.HistoryHash}
}

// expectStats checks an expect_stats step: each named counter has the given value.
func expectStats(t *testing.T, s *Session, raw json.RawMessage) error {
	var want map[string]uint64
	if err := json.Unmarshal(raw, &want); err != nil {
		return err
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	got := map[string]uint64{
		"calls": st.Calls, "blocked": st.Blocked, "errors": st.Errors,
		"history_len": st.HistoryLen, "results": st.Results, "late": st.Late,
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return fmt.Errorf("no counter named %s", name)
		}
		if g != w {
			return fmt.Errorf("stats.%s is %d, expected %d", name, g, w)
		}
	}
	return nil
}

// expectStatus checks that err is an *Error of the status a step names, with a message.
func expectStatus(err error, want string) error {
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Errorf("gave %v, expected %s", err, want)
	}
	if status, ok := statusNames[want]; !ok || e.Status != status {
		return fmt.Errorf("gave %v, expected %s", err, want)
	}
	if e.Message == "" {
		return fmt.Errorf("an error without a message")
	}
	return nil
}

// saveAndLoad saves s and loads the bytes under an engine of the same policy: the counters and the
// history must come through unchanged.
func saveAndLoad(s *Session, policy string) (*Session, error) {
	before, _ := s.Stats()
	b, err := s.Save()
	if err != nil {
		return nil, fmt.Errorf("Save: %v", err)
	}
	e, err := NewEngine(policy)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	loaded, err := e.LoadSession(b, false)
	if err != nil {
		return nil, fmt.Errorf("LoadSession: %v", err)
	}
	if after, _ := loaded.Stats(); after != before {
		loaded.Close()
		return nil, fmt.Errorf("the loaded session's counters differ: %+v then %+v", before, after)
	}
	return loaded, nil
}

func runVector(t *testing.T, doc *vector) error {
	var policy string
	if err := json.Unmarshal(doc.Policy, &policy); err != nil {
		policy = string(compact(doc.Policy))
	}
	s, err := NewSession(policy)
	if doc.PolicyError != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status != StatusInvalidPolicy {
			if s != nil {
				s.Close()
			}
			return fmt.Errorf("policy gave %v, expected an invalid_policy error", err)
		}
		if e.Path != doc.PolicyError.Path || e.Message != doc.PolicyError.Message {
			return fmt.Errorf("policy error was path=%q message=%q, expected %+v", e.Path, e.Message, *doc.PolicyError)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy refused: %v", err)
	}
	defer func() { s.Close() }()

	var lastCallID uint64
	for i, step := range doc.Steps {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("step %d: %s", i, fmt.Sprintf(format, a...))
		}
		if _, ok := step["save_and_load"]; ok {
			loaded, err := saveAndLoad(s, policy)
			if err != nil {
				return fail("%v", err)
			}
			s.Close()
			s = loaded
			continue
		}
		before := history(t, s)
		if raw, ok := step["tools"]; ok {
			if err := s.SetToolsJSON(compact(raw)); err != nil {
				return fail("SetTools: %v", err)
			}
			continue
		}
		if _, ok := step["reset"]; ok {
			if err := s.Reset(); err != nil {
				return fail("Reset: %v", err)
			}
			continue
		}
		if raw, ok := step["expect_stats"]; ok {
			if err := expectStats(t, s, raw); err != nil {
				return fail("%v", err)
			}
			continue
		}
		_, byID := step["record_id"]
		if _, last := step["record_last"]; byID || last {
			id, ok := num(step, "record_id")
			if !ok {
				id = lastCallID
			}
			out, _ := resultOf(step)
			want, ok := str(step, "expect_error")
			err := s.Record(id, out, isError(step))
			if !ok {
				if err != nil {
					return fail("record: %v", err)
				}
				continue
			}
			if err := expectStatus(err, want); err != nil {
				return fail("record %v", err)
			}
			if history(t, s) != before {
				return fail("a failed record changed the history")
			}
			continue
		}

		tool, ok := str(step, "call")
		if h, isHex := str(step, "tool_hex"); isHex {
			tool, ok = string(mustHex(h)), true
		}
		if !ok {
			return fail("a step of no known kind")
		}
		v, err := s.Check(tool, argsOf(step))
		if want, ok := str(step, "expect_error"); ok {
			if err := expectStatus(err, want); err != nil {
				return fail("check %v", err)
			}
			if history(t, s) != before {
				return fail("an erroring call changed the history")
			}
			continue
		}
		if err != nil {
			return fail("check: %v", err)
		}
		got := fmt.Sprintf("%s %s count=%d: %s", v.Action, v.Rule, v.Count, v.Message)
		if want, _ := str(step, "expect"); want != v.Action.String() {
			return fail("got %s, expected %s", got, want)
		}
		if want, ok := str(step, "rule"); ok && want != v.Rule {
			return fail("got %s, expected rule %s", got, want)
		} else if !ok && v.Action == Allow && v.Rule != "" {
			return fail("got %s, expected no rule", got)
		}
		if want, ok := num(step, "count"); ok && want != uint64(v.Count) {
			return fail("got %s, expected count %d", got, want)
		}
		if raw, ok := step["message_contains"]; ok {
			var needles []string
			if err := json.Unmarshal(raw, &needles); err != nil {
				return fail("message_contains: %v", err)
			}
			for _, n := range needles {
				if !strings.Contains(v.Message, n) {
					return fail("message lacks %q: %s", n, got)
				}
			}
		}
		if v.Action != Allow && v.Message == "" {
			return fail("a non-allow verdict without a message")
		}
		if !v.MayRun() {
			if v.CallID != 0 || history(t, s) != before {
				return fail("a blocked call entered the history")
			}
			continue
		}
		lastCallID = v.CallID
		if out, ok := resultOf(step); ok {
			if err := s.Record(v.CallID, out, isError(step)); err != nil {
				return fail("record failed: %v", err)
			}
		}
	}
	return nil
}

func vectorFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("..", "..", "tests", "vectors", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 40 {
		t.Fatalf("only %d vectors", len(files))
	}
	return files
}

func TestSharedVectors(t *testing.T) {
	for _, path := range vectorFiles(t) {
		path := path
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var doc vector
			if err := json.Unmarshal(text, &doc); err != nil {
				t.Fatalf("not a vector: %v", err)
			}
			if err := runVector(t, &doc); err != nil {
				t.Error(err)
			}
		})
	}
}
