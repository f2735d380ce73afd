package microloop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/microloop/microloop/bindings/go/approval"
)

// A session under [approval]: the core's token for an allowed call verifies with package approval
// (golang-jwt + gowebpki/jcs), a blocked call has none, unrepresentable arguments get a reason.
func TestApprovalTokensFromASession(t *testing.T) {
	var v struct {
		SignerKey string          `json:"signer_key"`
		JWKS      json.RawMessage `json:"jwks"`
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "tests", "vectors", "approval", "approval.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "approval.key")
	if err := os.WriteFile(key, []byte(v.SignerKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(map[string]any{
		"loops":    map[string]any{"max_identical": 2},
		"approval": map[string]any{"key_file": key, "audience": "tools.go"},
	})
	s, err := NewSession(string(policy))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := approval.KeysFromJWKS(v.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	ver := &approval.Verifier{Keys: keys, Audience: "tools.go", Seen: approval.NewMemorySeen()}
	args := []byte(`{"q": "caf\u00e9", "n": 1.0}`)
	sawBlock := false
	for i := 0; i < 6 && !sawBlock; i++ {
		vd, err := s.Check("search", args)
		if err != nil {
			t.Fatal(err)
		}
		if !vd.MayRun() {
			sawBlock = true
			if vd.Approval != "" {
				t.Fatal("a blocked call has a token")
			}
			break
		}
		claims, err := ver.Verify(vd.Approval, "search", []byte(`{"n":1,"q":"café"}`))
		if err != nil {
			t.Fatalf("call %d (%v): %v", i, vd.Action, err)
		}
		if claims.CallID != vd.CallID {
			t.Fatalf("call_id %d, verdict %d", claims.CallID, vd.CallID)
		}
		if err := s.Record(vd.CallID, []byte("same"), false); err != nil {
			t.Fatal(err)
		}
	}
	if !sawBlock {
		t.Fatal("the repeated call was never blocked")
	}
	vd, err := s.Check("lookup", []byte(`{"id": 9007199254740993}`))
	if err != nil || !vd.MayRun() || vd.Approval != "" || vd.ApprovalError == "" {
		t.Fatalf("unrepresentable arguments: %+v, %v", vd, err)
	}
}
