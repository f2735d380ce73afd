package microloop

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func newSession(t testing.TB, policy string) *Session {
	t.Helper()
	s, err := NewSession(policy)
	if err != nil {
		t.Fatalf("NewSession(%q): %v", policy, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVersionMatchesHeader(t *testing.T) {
	if headerABIVersion != ABIVersion {
		t.Fatalf("the header has ABI %d, the package %d", headerABIVersion, ABIVersion)
	}
	if v := Version(); v == "" || strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q", v)
	}
}

func TestAPageBehindACaptchaIsBlockedOnTheThirdVisit(t *testing.T) {
	s := newSession(t, "balanced")
	args := []byte(`{"url": "https://shop.example/item/42"}`)
	var actions []Action
	for i := 0; i < 3; i++ {
		v, err := s.Check("open_page", args)
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, v.Action)
		if v.MayRun() {
			if v.CallID == 0 {
				t.Fatal("an allowed call without an id")
			}
			if err := s.Record(v.CallID, []byte("Please solve the CAPTCHA to continue."), false); err != nil {
				t.Fatal(err)
			}
		} else if v.Rule != "loop.no_progress" || v.Message == "" || v.CallID != 0 {
			t.Fatalf("blocked with %+v", v)
		}
	}
	if actions[0] != Allow || actions[2] != Block {
		t.Fatalf("actions %v", actions)
	}
	st, err := s.Stats()
	if err != nil || st.Calls != 2 || st.Blocked != 1 || st.HistoryLen != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.HistoryLen != 0 || st.Calls != 0 {
		t.Fatalf("stats after Reset %+v", st)
	}
}

func TestShadowModeLetsTheThirdVisitRunAndSaysItWouldHaveBlocked(t *testing.T) {
	s := newSession(t, `{"mode": "observe"}`)
	args := []byte(`{"url": "https://shop.example/item/42"}`)
	var observed []Action
	for i := 0; i < 3; i++ {
		v, err := s.Check("open_page", args)
		if err != nil {
			t.Fatal(err)
		}
		if v.Action != Allow || v.CallID == 0 {
			t.Fatalf("shadow mode did not let the call run: %+v", v)
		}
		if v.Observed == Block && v.Rule != "loop.no_progress" {
			t.Fatalf("would-be block by %q", v.Rule)
		}
		observed = append(observed, v.Observed)
		if err := s.Record(v.CallID, []byte("Please solve the CAPTCHA to continue."), false); err != nil {
			t.Fatal(err)
		}
	}
	if observed[0] != Allow || observed[1] != Warn || observed[2] != Block {
		t.Fatalf("observed %v", observed)
	}
	if st, err := s.Stats(); err != nil || st.Calls != 3 || st.Observed != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

func TestARefusedPolicyIsATypedErrorWithItsPath(t *testing.T) {
	_, err := NewSession(`{"loops": {"max_identicl": 3}}`)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusInvalidPolicy || !strings.HasPrefix(e.Path, "loops") || e.Message == "" {
		t.Fatalf("got %#v", err)
	}
	if !errors.Is(err, ErrInvalidPolicy) || errors.Is(err, ErrInvalidJSON) {
		t.Fatal("errors.Is does not match by status")
	}
	if !strings.Contains(err.Error(), e.Path) {
		t.Fatalf("Error() lacks the path: %s", err)
	}
}

func TestBadInputsGiveTheirStatus(t *testing.T) {
	s := newSession(t, "")
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"invalid JSON arguments", func() error { _, err := s.Check("search", []byte("{")); return err }(), ErrInvalidJSON},
		{"an empty tool name", func() error { _, err := s.Check("", []byte("{}")); return err }(), ErrInvalidArgument},
		{"a tool name that is not UTF-8", func() error { _, err := s.Check("s\xff", nil); return err }(), ErrInvalidUTF8},
		{"a never issued call id", s.Record(12345, nil, false), ErrUnknownCall},
		{"tools that are not an array", s.SetToolsJSON([]byte(`{"a": 1}`)), ErrInvalidJSON},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := Fingerprint("search", []byte("[")); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("Fingerprint of bad JSON: %v", err)
	}
}

func TestKeyOrderAndWhiteSpaceDoNotChangeTheFingerprint(t *testing.T) {
	a, err1 := Fingerprint("search", []byte(`{"q": "x", "n": 1}`))
	b, err2 := Fingerprint("search", []byte(`{"n":1.0,"q":"x"}`))
	if err1 != nil || err2 != nil || a != b || a == 0 {
		t.Fatalf("%x %x %v %v", a, b, err1, err2)
	}
}

func TestSetToolsBlocksOtherTools(t *testing.T) {
	s := newSession(t, "balanced")
	if err := s.SetTools("search", "open_page"); err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckJSON("serach", map[string]string{"q": "x"})
	if err != nil || v.Action != Block || v.Rule != "tool.unknown" || !strings.Contains(v.Message, "open_page") {
		t.Fatalf("%+v %v", v, err)
	}
	if err := s.SetTools(); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.CheckJSON("serach", nil); v.Action != Allow {
		t.Fatalf("after forgetting the tools: %+v", v)
	}
}

func TestCallsAfterCloseGiveErrClosed(t *testing.T) {
	s, err := NewSession("strict")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if _, err := s.Check("search", nil); err != ErrClosed {
		t.Fatalf("Check after Close: %v", err)
	}
	if err := s.Record(1, nil, false); err != ErrClosed {
		t.Fatalf("Record after Close: %v", err)
	}
	if _, err := s.Stats(); err != ErrClosed {
		t.Fatalf("Stats after Close: %v", err)
	}
}

// The finalizer frees sessions nobody closed; under the race detector this also checks it
// does not race with the last use.
func TestForgottenSessionsAreFreedByTheFinalizer(t *testing.T) {
	for i := 0; i < 200; i++ {
		s, err := NewSession("balanced")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check("search", []byte(`{"q": 1}`)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

// Many goroutines share one session: every allowed call gets its own id, every result is
// recorded once, and the counters add up.
func TestOneSessionFromManyGoroutines(t *testing.T) {
	s := newSession(t, `{"budget": {"max_calls": 100000, "max_calls_per_minute": 100000}, "loops": {"window": 4096}}`)
	const workers, each = 8, 100
	var mu sync.Mutex
	ids := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				v, err := s.Check("fetch", []byte(fmt.Sprintf(`{"worker": %d, "page": %d}`, w, i)))
				if err != nil || !v.MayRun() {
					errs <- fmt.Errorf("worker %d call %d: %+v %v", w, i, v, err)
					return
				}
				mu.Lock()
				dup := ids[v.CallID]
				ids[v.CallID] = true
				mu.Unlock()
				if dup {
					errs <- fmt.Errorf("call id %d issued twice", v.CallID)
					return
				}
				if err := s.Record(v.CallID, []byte(fmt.Sprintf("page %d of %d", i, w)), false); err != nil {
					errs <- err
					return
				}
				if _, err := s.Stats(); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil || st.Calls != workers*each || len(ids) != workers*each {
		t.Fatalf("stats %+v (%v), %d ids", st, err, len(ids))
	}
}

// Close while other goroutines are mid-call: they finish or get ErrClosed, never a freed session.
func TestCloseDuringConcurrentCalls(t *testing.T) {
	s, err := NewSession("permissive")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := s.Check("search", []byte(fmt.Sprintf(`{"q": "%d-%d"}`, w, i)))
				if err == ErrClosed {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	runtime.Gosched()
	s.Close()
	wg.Wait()
}

func TestAnEngineIsSharedBySessionsWithTheirOwnHistories(t *testing.T) {
	if _, err := NewEngine(`{"loops": {"max_identicl": 3}}`); err == nil {
		t.Fatal("a bad policy gave an engine")
	}
	e, err := NewEngine("strict")
	if err != nil {
		t.Fatal(err)
	}
	sessions := make([]*Session, 8)
	for i := range sessions {
		if sessions[i], err = e.NewSession(); err != nil {
			t.Fatal(err)
		}
	}
	e.Close() // the sessions keep their own reference
	if _, err := e.NewSession(); err != ErrClosed {
		t.Fatalf("NewSession after Close: %v", err)
	}
	var wg sync.WaitGroup
	blockedAt := make([]int, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func(i int, s *Session) {
			defer wg.Done()
			defer s.Close()
			blockedAt[i] = -1
			for n := 0; n < 3; n++ {
				v, err := s.Check("open_page", []byte(`{"url": "x"}`))
				if err != nil {
					t.Error(err)
					return
				}
				if !v.MayRun() {
					blockedAt[i] = n
					return
				}
				s.Record(v.CallID, []byte("CAPTCHA"), false)
			}
		}(i, s)
	}
	wg.Wait()
	for i, at := range blockedAt {
		if at != 1 { // strict: the same answer once, then the same call is a loop
			t.Errorf("session %d blocked at call %d, want 1", i, at)
		}
	}
}

func TestAnEngineFingerprintLeavesOutTheIgnoredFields(t *testing.T) {
	e, err := NewEngine(`{"loops": {"ignore_fields": ["request_id"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a, _ := e.Fingerprint("search", []byte(`{"q": "x", "request_id": 1}`))
	b, _ := e.Fingerprint("search", []byte(`{"q": "x", "request_id": 2}`))
	c, _ := Fingerprint("search", []byte(`{"q": "x", "request_id": 1}`))
	d, _ := Fingerprint("search", []byte(`{"q": "x", "request_id": 2}`))
	if a != b || a == 0 || c == d {
		t.Fatalf("engine %x %x, without %x %x", a, b, c, d)
	}
}

func TestASavedSessionLoadsUnderItsPolicyOnly(t *testing.T) {
	s := newSession(t, "balanced")
	v, _ := s.Check("open_page", []byte(`{"url": "x"}`))
	s.Record(v.CallID, []byte("CAPTCHA"), false)
	b, err := s.Save()
	if err != nil || len(b) == 0 {
		t.Fatal(err)
	}
	strict, _ := NewEngine("strict")
	defer strict.Close()
	if _, err := strict.LoadSession(b, false); !errors.Is(err, ErrPolicyMismatch) {
		t.Fatalf("another policy: %v", err)
	}
	if loaded, err := strict.LoadSession(b, true); err != nil {
		t.Fatal(err)
	} else {
		loaded.Close()
	}
	balanced, _ := NewEngine("balanced")
	defer balanced.Close()
	bad := append([]byte(nil), b...)
	bad[len(bad)/2] ^= 1
	for _, c := range []struct {
		name  string
		bytes []byte
		want  error
	}{{"corrupt", bad, ErrInvalidSnapshot}, {"truncated", b[:len(b)-3], ErrInvalidSnapshot}, {"foreign", []byte("GIF89a..."), ErrInvalidSnapshot}, {"empty", nil, ErrInvalidSnapshot}} {
		if _, err := balanced.LoadSession(c.bytes, false); !errors.Is(err, c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	future := append([]byte(nil), b...)
	future[4] = 99
	if _, err := balanced.LoadSession(future, false); !errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("future version: %v", err)
	}
	loaded, err := balanced.LoadSession(b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	if v, _ := loaded.Check("open_page", []byte(`{"url": "x"}`)); v.Action != Warn {
		t.Fatalf("the loaded session forgot the first call: %v", v.Action)
	}
}
