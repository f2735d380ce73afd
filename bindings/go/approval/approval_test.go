package approval

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The shared vectors: tokens issued by the Rust core (tests/vectors/approval/approval.json).
type vectors struct {
	Verifier string          `json:"verifier"`
	JWKS     json.RawMessage `json:"jwks"`
	Kid      string          `json:"kid"`
	Audience string          `json:"audience"`
	Issuer   string          `json:"issuer"`
	Exp      int64           `json:"exp"`
	Cases    []struct {
		Name       string  `json:"name"`
		Tool       string  `json:"tool"`
		ArgsText   string  `json:"args_text"`
		Canonical  string  `json:"canonical"`
		ArgsSHA256 string  `json:"args_sha256"`
		CallID     uint64  `json:"call_id"`
		Action     string  `json:"action"`
		AuditSeq   *uint64 `json:"audit_seq"`
		Token      string  `json:"token"`
	} `json:"cases"`
	Unrepresentable []struct {
		Name     string `json:"name"`
		ArgsText string `json:"args_text"`
		ArgsHex  string `json:"args_hex"`
	} `json:"unrepresentable"`
}

func load(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "tests", "vectors", "approval", "approval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 8 || len(v.Unrepresentable) < 5 {
		t.Fatalf("too few vectors: %d cases, %d unrepresentable", len(v.Cases), len(v.Unrepresentable))
	}
	return v
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "not an *Error: " + err.Error()
}

func TestVectorTokensVerifyAndHashTheSame(t *testing.T) {
	v := load(t)
	fromJWKS, err := KeysFromJWKS(v.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	kid, pub, err := KeyFromVerifier(v.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if kid != v.Kid || !pub.Equal(fromJWKS[v.Kid]) {
		t.Fatalf("the verifier string's kid %s and key differ from the JWKS's %s", kid, v.Kid)
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			canon, err := CanonicalArgs([]byte(c.ArgsText))
			if err != nil {
				t.Fatal(err)
			}
			if string(canon) != c.Canonical {
				t.Fatalf("canonical form\n got %s\nwant %s", canon, c.Canonical)
			}
			if h, _ := ArgsSHA256([]byte(c.ArgsText)); h != c.ArgsSHA256 {
				t.Fatalf("args_sha256 %s, want %s", h, c.ArgsSHA256)
			}
			ver := &Verifier{Keys: fromJWKS, Audience: v.Audience, Seen: NewMemorySeen()}
			claims, err := ver.Verify(c.Token, c.Tool, []byte(c.ArgsText))
			if err != nil {
				t.Fatal(err)
			}
			if claims.CallID != c.CallID || claims.Action != c.Action || claims.ArgsSHA256 != c.ArgsSHA256 {
				t.Fatalf("claims %+v", claims)
			}
			if (claims.AuditSeq == nil) != (c.AuditSeq == nil) || (c.AuditSeq != nil && *claims.AuditSeq != *c.AuditSeq) {
				t.Fatalf("audit_seq %v, want %v", claims.AuditSeq, c.AuditSeq)
			}
			if _, err := ver.Verify(c.Token, c.Tool, []byte(c.ArgsText)); reason(err) != ReasonReplayed {
				t.Fatalf("a second use: %v", err)
			}
		})
	}
}

func TestVectorUnrepresentableArgumentsAreRefused(t *testing.T) {
	v := load(t)
	for _, c := range v.Unrepresentable {
		args := []byte(c.ArgsText)
		if c.ArgsHex != "" {
			args, _ = hex.DecodeString(c.ArgsHex)
		}
		if _, err := CanonicalArgs(args); err == nil || reason(err) != ReasonUnrepresentable {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

func TestWhatWasNotApprovedIsRefused(t *testing.T) {
	v := load(t)
	keys, _ := KeysFromJWKS(v.JWKS)
	c := v.Cases[1]
	ver := func() *Verifier { return &Verifier{Keys: keys, Audience: v.Audience} }
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name, want string
		ver        *Verifier
		tool       string
		args       string
	}{
		{"another tool", ReasonTool, ver(), "delete", c.ArgsText},
		{"changed arguments", ReasonArguments, ver(), c.Tool, strings.Replace(c.ArgsText, "1", "3", 1)},
		{"a duplicate key", ReasonUnrepresentable, ver(), c.Tool, `{"a": 1, "a": 1}`},
		{"another audience", ReasonAudience, &Verifier{Keys: keys, Audience: "other"}, c.Tool, c.ArgsText},
		{"another issuer", ReasonIssuer, &Verifier{Keys: keys, Audience: v.Audience, Issuer: "someone"}, c.Tool, c.ArgsText},
		{"expired", ReasonExpired, &Verifier{Keys: keys, Audience: v.Audience, Now: func() time.Time { return time.Unix(v.Exp+60, 0) }}, c.Tool, c.ArgsText},
		{"within the leeway", "", &Verifier{Keys: keys, Audience: v.Audience, Leeway: 2 * time.Minute, Now: func() time.Time { return time.Unix(v.Exp+60, 0) }}, c.Tool, c.ArgsText},
		{"a foreign key", ReasonUnknownKey, &Verifier{Keys: map[string]ed25519.PublicKey{Thumbprint(otherPub): otherPub}, Audience: v.Audience}, c.Tool, c.ArgsText},
		{"a foreign key under the kid", ReasonSignature, &Verifier{Keys: map[string]ed25519.PublicKey{v.Kid: otherPub}, Audience: v.Audience}, c.Tool, c.ArgsText},
	}
	for _, tc := range cases {
		_, err := tc.ver.Verify(c.Token, tc.tool, []byte(tc.args))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else if err == nil || reason(err) != tc.want {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestAPlainJWTIsNotAnApproval(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]ed25519.PublicKey{"k": pub}
	claims := jwt.MapClaims{"iss": "microloop", "aud": "a", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		"jti": "j", "tool": "t", "args_sha256": "x"}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "k"
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Keys: keys, Audience: "a"}).Verify(s, "t", []byte("{}")); reason(err) != ReasonType {
		t.Fatalf("a JWT without the approval typ: %v", err)
	}
	tok.Header["typ"] = TokenType
	s, _ = tok.SignedString(priv)
	if _, err := (&Verifier{Keys: keys, Audience: "a"}).Verify(s, "t", []byte("{}")); reason(err) != ReasonArguments {
		t.Fatalf("the typ set, the hash wrong: %v", err)
	}
	if _, err := (&Verifier{Keys: keys, Audience: "a"}).Verify("a.b", "t", nil); reason(err) != ReasonMalformed {
		t.Fatalf("not a JWS: %v", err)
	}
}
