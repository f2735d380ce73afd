//! RFC 6962 Merkle trees: leaf and node hashes, a tree that grows one leaf at a time keeping only
//! its frontier, tree heads of any prefix, and inclusion proofs.
//!
//! Hashing is RFC 6962 §2.1 (as in Certificate Transparency, Go's `sumdb/tlog`, Trillian):
//! a leaf is `SHA-256(0x00 || data)`, an inner node `SHA-256(0x01 || left || right)`, the tree of
//! `n` leaves splits at the largest power of two below `n`, and the empty tree's head is
//! `SHA-256("")`.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The hash of one leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The head of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A tree that grows one leaf at a time. It keeps only the roots of its perfect subtrees (at most
/// 64), so appending costs O(1) amortized hashes and memory stays bounded whatever the size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// The roots of the perfect subtrees the tree decomposes into, largest (leftmost) first: one
    /// per bit set in `size`.
    roots: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from its parts; `None` unless there is one root per bit set in `size`.
    pub fn from_parts(size: u64, roots: Vec<Hash>) -> Option<Frontier> {
        (roots.len() == size.count_ones() as usize).then_some(Frontier { size, roots })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtrees' roots, largest first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a leaf by its hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        // Each trailing 1 bit of the old size is a subtree of the new leaf's height: merge it.
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.roots.pop().expect("one root per set bit");
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.roots.push(h);
        self.size += 1;
    }

    /// The tree head (RFC 6962 MTH) of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut it = self.roots.iter().rev();
        let Some(last) = it.next() else { return empty_root() };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

fn split(n: usize) -> usize {
    // The largest power of two strictly below n (n >= 2).
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The tree head of `leaves` (hashes), computed recursively as RFC 6962 defines it.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The audit path (RFC 6962 §2.1.1) of leaf `index` in the tree of `leaves`, from the leaf's
/// sibling upward. `None` when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut lo = 0;
    let mut hi = leaves.len();
    let mut stack = Vec::new();
    // Descend, remembering the sibling subtree at each level; the path lists them bottom-up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            stack.push(root_of(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            stack.push(root_of(&leaves[lo..lo + k]));
            lo += k;
        }
    }
    while let Some(h) = stack.pop() {
        path.push(h);
    }
    Some(path)
}

/// Whether `proof` shows the leaf `leaf` at `index` in a tree of `size` leaves whose head is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc6962_reference_roots() {
        // The test vectors of Certificate Transparency's reference implementation
        // (merkle_tree_test: the first leaves of the 8-leaf tree and its heads).
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let heads = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut f = Frontier::new();
        for (i, want) in heads.iter().enumerate() {
            f.push(hashes[i]);
            assert_eq!(hex(&f.root()), *want, "size {}", i + 1);
            assert_eq!(hex(&root_of(&hashes[..=i])), *want);
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_frontier_agrees_with_the_recursive_definition() {
        let l = leaves(300);
        let mut f = Frontier::new();
        for n in 1..=l.len() {
            f.push(l[n - 1]);
            assert_eq!(f.root(), root_of(&l[..n]), "size {n}");
            assert_eq!(f.roots().len(), n.count_ones() as usize);
        }
        let g = Frontier::from_parts(f.size(), f.roots().to_vec()).unwrap();
        assert_eq!(g, f);
        assert!(Frontier::from_parts(3, vec![l[0]]).is_none());
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let l = leaves(37);
        for n in 1..=l.len() {
            let root = root_of(&l[..n]);
            for i in 0..n {
                let p = inclusion_proof(&l[..n], i).unwrap();
                assert!(verify_inclusion(&l[i], i as u64, n as u64, &p, &root), "{i} in {n}");
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(!verify_inclusion(&l[other], i as u64, n as u64, &p, &root));
                    assert!(!verify_inclusion(&l[i], i as u64, n as u64, &p[1..], &root));
                }
            }
            assert!(inclusion_proof(&l[..n], n).is_none());
        }
    }
}
