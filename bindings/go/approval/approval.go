// Package approval checks MicroLoop approval tokens on the tool's side: the call about to run is
// the one the guard approved.
//
// Under a policy with an [approval] section, every call the guard lets run carries a token: a
// compact JWS (alg EdDSA, typ "microloop-approval+jwt") over the session, the call id, the tool,
// the SHA-256 of the arguments' RFC 8785 canonical JSON, the audience and a short lifetime. A tool
// server checks it before running the call:
//
//	v := &approval.Verifier{Keys: keys, Audience: "tools.example", Seen: approval.NewMemorySeen()}
//	claims, err := v.Verify(token, "search", rawArgs)
//
// Verify refuses (an *Error with a Reason) a token for another tool, arguments changed since the
// check, an expired token, a token id already seen, a token signed by a key not in Keys, and
// arguments JCS cannot represent (an integer outside ±(2^53 - 1), a duplicate key, bytes that are
// not UTF-8 JSON). It is built on github.com/golang-jwt/jwt/v5 and github.com/gowebpki/jcs and
// needs neither cgo nor the MicroLoop library.
package approval

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gowebpki/jcs"
)

// TokenType is the JWS typ header of an approval token.
const TokenType = "microloop-approval+jwt"

// MetaKey is where the MCP relay puts the token: params._meta["dev.microloop/approval"].
const MetaKey = "dev.microloop/approval"

// Reasons a token is refused (Error.Reason).
const (
	ReasonMalformed       = "malformed"
	ReasonType            = "type"
	ReasonUnknownKey      = "unknown_key"
	ReasonSignature       = "signature"
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonAudience        = "audience"
	ReasonIssuer          = "issuer"
	ReasonTool            = "tool"
	ReasonArguments       = "arguments"
	ReasonUnrepresentable = "unrepresentable"
	ReasonReplayed        = "replayed"
)

// Error is a token that does not approve the call.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }

func fail(reason, format string, a ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, a...)}
}

// Claims are an approval token's claims.
type Claims struct {
	jwt.RegisteredClaims
	SessionID  string  `json:"sid"`
	CallID     uint64  `json:"call_id"`
	Tool       string  `json:"tool"`
	ArgsSHA256 string  `json:"args_sha256"`
	Action     string  `json:"action"`
	AuditSeq   *uint64 `json:"audit_seq,omitempty"`
}

// SeenSet keeps the ids of used tokens until they expire (share one between a server's workers).
type SeenSet interface {
	// Add records jti until exp; false when it was already there.
	Add(jti string, exp time.Time) bool
}

// MemorySeen is an in-memory SeenSet; entries go once expired. Safe for concurrent use.
type MemorySeen struct {
	mu   sync.Mutex
	seen map[string]time.Time
	next time.Time
}

// NewMemorySeen returns an empty MemorySeen.
func NewMemorySeen() *MemorySeen { return &MemorySeen{seen: map[string]time.Time{}} }

// Add implements SeenSet.
func (m *MemorySeen) Add(jti string, exp time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if now.After(m.next) {
		for k, e := range m.seen {
			if e.Before(now.Add(-5 * time.Minute)) {
				delete(m.seen, k)
			}
		}
		m.next = now.Add(30 * time.Second)
	}
	if _, ok := m.seen[jti]; ok {
		return false
	}
	m.seen[jti] = exp
	return true
}

// Verifier checks approval tokens.
type Verifier struct {
	// Keys are the guard's public keys by kid (KeysFromJWKS, KeyFromVerifier); during a rotation
	// give the old and the new.
	Keys map[string]ed25519.PublicKey
	// Audience is this server's; the token's aud must contain it.
	Audience string
	// Issuer is the expected iss; "" means "microloop".
	Issuer string
	// Leeway is the clock skew allowed on exp and iat.
	Leeway time.Duration
	// Seen keeps used token ids; nil turns the replay check off.
	Seen SeenSet
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var errUnknownKey = errors.New("unknown key")
var errType = errors.New("not an approval token")

// Verify checks that token approves running tool with args (the arguments' JSON text as the tool
// received it) and returns its claims.
func (v *Verifier) Verify(token, tool string, args []byte) (*Claims, error) {
	issuer := v.Issuer
	if issuer == "" {
		issuer = "microloop"
	}
	now := v.Now
	if now == nil {
		now = time.Now
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithAudience(v.Audience),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(v.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	claims := &Claims{}
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != TokenType {
			return nil, errType
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := v.Keys[kid]
		if !ok {
			return nil, errUnknownKey
		}
		return key, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, errType):
		return nil, fail(ReasonType, "the token's typ is not %q", TokenType)
	case errors.Is(err, errUnknownKey):
		return nil, fail(ReasonUnknownKey, "signed by a key not among the trusted keys")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fail(ReasonSignature, "the signature does not verify")
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fail(ReasonExpired, "the token has expired")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, fail(ReasonNotYetValid, "the token is issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, fail(ReasonAudience, "the token is for another audience")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, fail(ReasonIssuer, "the token has another issuer")
	default:
		return nil, fail(ReasonMalformed, "%v", err)
	}
	if claims.ID == "" || claims.Tool == "" || claims.ArgsSHA256 == "" {
		return nil, fail(ReasonMalformed, "the token lacks jti, tool or args_sha256")
	}
	if claims.Tool != tool {
		return nil, fail(ReasonTool, "the token approves %q, not %q", claims.Tool, tool)
	}
	got, err := ArgsSHA256(args)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(claims.ArgsSHA256)) != 1 {
		return nil, fail(ReasonArguments, "the arguments are not the ones approved (their RFC 8785 SHA-256 differs)")
	}
	if v.Seen != nil && !v.Seen.Add(claims.ID, claims.ExpiresAt.Time) {
		return nil, fail(ReasonReplayed, "the token %s was already used", claims.ID)
	}
	return claims, nil
}

var maxExact = big.NewInt(1<<53 - 1)

// checkIJSON refuses what RFC 8785 has no single form for: bytes that are not UTF-8, duplicate
// keys, integer literals outside ±(2^53 - 1), and anything after the document.
func checkIJSON(args []byte) error {
	if !utf8.Valid(args) {
		return errors.New("the arguments are not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	type frame struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	value := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return errors.New("the arguments end inside a value")
			}
			return nil
		}
		if err != nil {
			return err
		}
		top := (*frame)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.keys != nil && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				value()
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("the key %q appears twice in one object", k)
			}
			top.keys[k] = true
			top.expectKey = false
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
		case json.Number:
			s := string(t)
			if !strings.ContainsAny(s, ".eE") {
				n, ok := new(big.Int).SetString(s, 10)
				if !ok || new(big.Int).Abs(n).Cmp(maxExact) > 0 {
					return fmt.Errorf("the integer %s is outside I-JSON's exact range ±(2^53 - 1)", s)
				}
			}
			value()
		default:
			value()
		}
	}
}

// CanonicalArgs is the RFC 8785 canonical form of a call's arguments (JSON text), as the guard
// hashed them; an *Error with ReasonUnrepresentable when JCS has no single form for them.
func CanonicalArgs(args []byte) ([]byte, error) {
	if len(bytes.TrimSpace(args)) == 0 || bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = []byte("{}")
	}
	if err := checkIJSON(args); err != nil {
		return nil, fail(ReasonUnrepresentable, "the arguments have no RFC 8785 canonical form (%v)", err)
	}
	out, err := jcs.Transform(args)
	if err != nil {
		return nil, fail(ReasonUnrepresentable, "the arguments have no RFC 8785 canonical form (%v)", err)
	}
	return out, nil
}

// ArgsSHA256 is the lower-case hex SHA-256 of CanonicalArgs (the token's args_sha256 claim, and
// the audit log's).
func ArgsSHA256(args []byte) (string, error) {
	c, err := CanonicalArgs(args)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(c)
	return hex.EncodeToString(h[:]), nil
}

// Thumbprint is the RFC 7638 thumbprint of an Ed25519 public key (the default kid).
func Thumbprint(pub ed25519.PublicKey) string {
	c := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	h := sha256.Sum256([]byte(c))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// KeysFromJWKS reads the Ed25519 keys of a JWK Set (what the proxy serves at
// /.well-known/microloop/jwks.json) by kid; a key without kid goes under its thumbprint.
func KeysFromJWKS(data []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("the key %q is not a valid Ed25519 key", k.Kid)
		}
		kid := k.Kid
		if kid == "" {
			kid = Thumbprint(x)
		}
		keys[kid] = ed25519.PublicKey(x)
	}
	return keys, nil
}

// KeyFromVerifier reads a verifier key string (`microloop keys new` prints it:
// <name>+<key id>+<base64(0x01 || public key)>) and returns its thumbprint kid and key.
func KeyFromVerifier(s string) (string, ed25519.PublicKey, error) {
	parts := strings.SplitN(strings.TrimSpace(s), "+", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		return "", nil, errors.New("not a verifier key: expected <name>+<key id>+<base64 key>")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", nil, errors.New("the verifier key is not an Ed25519 key")
	}
	id := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if hex.EncodeToString(id[:4]) != parts[1] {
		return "", nil, errors.New("the verifier key's id does not match its name and key")
	}
	pub := ed25519.PublicKey(raw[1:])
	return Thumbprint(pub), pub, nil
}
