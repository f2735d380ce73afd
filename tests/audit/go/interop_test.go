// Interop: a log written by MicroLoop's Rust writer, read with code nobody here wrote.
// Go's golang.org/x/mod/sumdb/note verifies every checkpoint with the verifier key MicroLoop
// printed, and golang.org/x/mod/sumdb/tlog computes the same tree heads from the same leaves and
// accepts MicroLoop's inclusion proofs.
//
// MICROLOOP_AUDIT_FIXTURE names the directory `cargo run --example fixture` wrote.
package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type hashes []tlog.Hash

func (h hashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(h)) {
			return nil, fmt.Errorf("no hash at index %d", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

func fixture(t *testing.T) string {
	dir := os.Getenv("MICROLOOP_AUDIT_FIXTURE")
	if dir == "" {
		t.Fatal("MICROLOOP_AUDIT_FIXTURE is not set: run `make test-audit`")
	}
	return dir
}

func verifier(t *testing.T, dir string) note.Verifiers {
	raw, err := os.ReadFile(filepath.Join(dir, "verifier.txt"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("Go does not read MicroLoop's verifier key: %v", err)
	}
	return note.VerifierList(v)
}

// parseCheckpoint reads a tlog-checkpoint body: origin, size, base64 root.
func parseCheckpoint(t *testing.T, text string) (string, int64, tlog.Hash) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 {
		t.Fatalf("checkpoint %q has fewer than three lines", text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		t.Fatalf("root %q: %v", lines[2], err)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return lines[0], size, h
}

// Every checkpoint verifies with sumdb/note, and its root is tlog.TreeHash of the records before it.
func TestCheckpointsVerifyAndRootsAgreeWithTlog(t *testing.T) {
	dir := fixture(t)
	vs := verifier(t, dir)
	f, err := os.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var leaves [][]byte
	checkpoints := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"seq":`)) {
			leaves = append(leaves, append([]byte(nil), line...))
			continue
		}
		var cp struct {
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(line, &cp); err != nil || cp.Checkpoint == "" {
			t.Fatalf("line is neither a record nor a checkpoint: %s", line)
		}
		n, err := note.Open([]byte(cp.Checkpoint), vs)
		if err != nil {
			t.Fatalf("sumdb/note refuses MicroLoop's checkpoint: %v\n%s", err, cp.Checkpoint)
		}
		if len(n.Sigs) != 1 || n.Sigs[0].Name != "example.com/microloop-audit" {
			t.Fatalf("signatures: %+v", n.Sigs)
		}
		origin, size, root := parseCheckpoint(t, n.Text)
		if origin != "example.com/microloop-audit" || size != int64(len(leaves)) {
			t.Fatalf("checkpoint %q after %d records", n.Text, len(leaves))
		}
		// tlog's tree of the same records, built its own way (stored hashes, then the head).
		var stored hashes
		for i := int64(0); i < size; i++ {
			hs, err := tlog.StoredHashes(i, leaves[i], stored)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		want, err := tlog.TreeHash(size, stored)
		if err != nil {
			t.Fatal(err)
		}
		if want != root {
			t.Fatalf("size %d: MicroLoop's root %v, tlog's %v", size, root, want)
		}
		checkpoints++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checkpoints < 2 || len(leaves) == 0 {
		t.Fatalf("too small a fixture: %d checkpoints, %d records", checkpoints, len(leaves))
	}
	t.Logf("%d records, %d checkpoints: every one verified by sumdb/note, every root equal to tlog.TreeHash", len(leaves), checkpoints)
}

// MicroLoop's inclusion proofs are accepted by tlog.CheckRecord.
func TestInclusionProofsAreAcceptedByTlog(t *testing.T) {
	dir := fixture(t)
	vs := verifier(t, dir)
	raw, err := os.ReadFile(filepath.Join(dir, "proofs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var p struct {
			Seq        int64    `json:"seq"`
			Record     string   `json:"record"`
			LeafHash   string   `json:"leaf_hash"`
			TreeSize   int64    `json:"tree_size"`
			Root       string   `json:"root"`
			Path       []string `json:"path"`
			Checkpoint string   `json:"checkpoint"`
		}
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatal(err)
		}
		note, err := note.Open([]byte(p.Checkpoint), vs)
		if err != nil {
			t.Fatal(err)
		}
		_, size, root := parseCheckpoint(t, note.Text)
		leaf := tlog.RecordHash([]byte(p.Record))
		if hex.EncodeToString(leaf[:]) != p.LeafHash || size != p.TreeSize || hex.EncodeToString(root[:]) != p.Root {
			t.Fatalf("seq %d: the proof's leaf, size or root disagree with tlog and the signed checkpoint", p.Seq)
		}
		var proof tlog.RecordProof
		for _, h := range p.Path {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != tlog.HashSize {
				t.Fatalf("path hash %q", h)
			}
			var x tlog.Hash
			copy(x[:], b)
			proof = append(proof, x)
		}
		if err := tlog.CheckRecord(proof, size, root, p.Seq, leaf); err != nil {
			t.Fatalf("seq %d: tlog refuses MicroLoop's inclusion proof: %v", p.Seq, err)
		}
		if len(proof) > 0 {
			proof[0][0] ^= 1
			if tlog.CheckRecord(proof, size, root, p.Seq, leaf) == nil {
				t.Fatalf("seq %d: a corrupted proof was accepted", p.Seq)
			}
		}
		n++
	}
	if n < 3 {
		t.Fatalf("only %d proofs", n)
	}
}
