//! The state root: a sparse binary Merkle tree over `H(state key)` → `H(value)` (ADR 0002).
//!
//! Hashes: empty subtree = 32 zero bytes; leaf = H(0x00 ‖ key hash ‖ value hash); internal =
//! H(0x01 ‖ left ‖ right). A subtree holding one key is that key's leaf at any depth, so the
//! root depends only on the set of (key, value) pairs, never on the order they arrived in.
//! A batch of k changes costs O(k · log n) hashes. The tree lives in memory and is rebuilt from
//! the state column family at start; the rebuilt root must equal the committed one.

use corridor_sdk::proof::{StateProof, internal_hash, key_bit as bit, leaf_hash};
use corridor_sdk::{Hash, HashAlgorithm};

/// Above this many changes in one subtree, its two halves are hashed on two threads.
const PARALLEL_CHANGES_MIN: usize = 2_048;

#[derive(Debug, Default)]
enum Node {
    #[default]
    Empty,
    Leaf {
        key: Hash,
        value: Hash,
        hash: Hash,
    },
    Internal {
        left: Box<Node>,
        right: Box<Node>,
        hash: Hash,
    },
}

impl Node {
    fn hash(&self) -> Hash {
        match self {
            Node::Empty => Hash::ZERO,
            Node::Leaf { hash, .. } | Node::Internal { hash, .. } => *hash,
        }
    }
}

pub(crate) struct SparseMerkleTree {
    algorithm: HashAlgorithm,
    root: Node,
}

/// Sibling hashes from the root down to where the key's path ends, and what sits there.
impl SparseMerkleTree {
    pub fn new(algorithm: HashAlgorithm) -> SparseMerkleTree {
        SparseMerkleTree {
            algorithm,
            root: Node::Empty,
        }
    }

    pub fn root(&self) -> Hash {
        self.root.hash()
    }

    /// Keys in the tree; walks the whole tree, so not for hot paths.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        count_leaves(&self.root)
    }

    pub fn key_hash(&self, key: &[u8]) -> Hash {
        self.algorithm.digest(key)
    }

    pub fn value_hash(&self, value: &[u8]) -> Hash {
        self.algorithm.digest(value)
    }

    /// Apply changes: `Some(value hash)` sets a key, `None` removes it.
    pub fn update(&mut self, mut changes: Vec<(Hash, Option<Hash>)>) {
        changes.sort_by_key(|change| change.0);
        changes.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 = later.1; // the last change to a key wins
            }
            same
        });
        let mut root = std::mem::take(&mut self.root);
        apply(self.algorithm, &mut root, 0, &changes);
        self.root = root;
    }

    /// The proof for the key whose hash is `key`.
    pub fn prove(&self, key: &Hash) -> StateProof {
        let mut siblings = Vec::new();
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return StateProof { siblings, leaf: None },
                Node::Leaf { key, value, .. } => {
                    return StateProof {
                        siblings,
                        leaf: Some((*key, *value)),
                    };
                }
                Node::Internal { left, right, .. } => {
                    let (next, other) = if bit(key, depth) { (right, left) } else { (left, right) };
                    siblings.push(other.hash());
                    node = next;
                    depth += 1;
                }
            }
        }
    }
}

#[cfg(test)]
fn count_leaves(node: &Node) -> usize {
    match node {
        Node::Empty => 0,
        Node::Leaf { .. } => 1,
        Node::Internal { left, right, .. } => count_leaves(left) + count_leaves(right),
    }
}

/// `changes` are sorted by key, unique, and all share the node's path prefix of `depth` bits.
fn apply(algorithm: HashAlgorithm, node: &mut Node, depth: usize, changes: &[(Hash, Option<Hash>)]) {
    if changes.is_empty() {
        return;
    }
    assert!(depth < 256, "two distinct keys share all 256 bits");
    match node {
        Node::Internal { left, right, .. } => {
            let split = changes.partition_point(|(key, _)| !bit(key, depth));
            let (low, high) = changes.split_at(split);
            if changes.len() >= PARALLEL_CHANGES_MIN {
                rayon::join(
                    || apply(algorithm, left, depth + 1, low),
                    || apply(algorithm, right, depth + 1, high),
                );
            } else {
                apply(algorithm, left, depth + 1, low);
                apply(algorithm, right, depth + 1, high);
            }
            let (left, right) = match std::mem::take(node) {
                Node::Internal { left, right, .. } => (left, right),
                _ => unreachable!("matched Internal above"),
            };
            *node = combine(algorithm, *left, *right);
        }
        Node::Empty | Node::Leaf { .. } => {
            let mut entries: Vec<(Hash, Hash)> = changes
                .iter()
                .filter_map(|(key, value)| value.map(|value| (*key, value)))
                .collect();
            if let Node::Leaf { key, value, .. } = node
                && changes.binary_search_by(|(changed, _)| changed.cmp(key)).is_err()
            {
                let at = entries.partition_point(|(k, _)| k < key);
                entries.insert(at, (*key, *value));
            }
            *node = build(algorithm, depth, &entries);
        }
    }
}

/// A subtree for sorted, unique `entries` sharing `depth` bits of prefix.
fn build(algorithm: HashAlgorithm, depth: usize, entries: &[(Hash, Hash)]) -> Node {
    match entries {
        [] => Node::Empty,
        [(key, value)] => Node::Leaf {
            key: *key,
            value: *value,
            hash: leaf_hash(algorithm, key, value),
        },
        _ => {
            assert!(depth < 256, "two distinct keys share all 256 bits");
            let split = entries.partition_point(|(key, _)| !bit(key, depth));
            let (left, right) = if entries.len() >= PARALLEL_CHANGES_MIN {
                rayon::join(
                    || build(algorithm, depth + 1, &entries[..split]),
                    || build(algorithm, depth + 1, &entries[split..]),
                )
            } else {
                (
                    build(algorithm, depth + 1, &entries[..split]),
                    build(algorithm, depth + 1, &entries[split..]),
                )
            };
            combine(algorithm, left, right)
        }
    }
}

/// Join two children, collapsing a subtree that holds one leaf (or none) into that leaf.
fn combine(algorithm: HashAlgorithm, left: Node, right: Node) -> Node {
    match (left, right) {
        (Node::Empty, Node::Empty) => Node::Empty,
        (leaf @ Node::Leaf { .. }, Node::Empty) | (Node::Empty, leaf @ Node::Leaf { .. }) => leaf,
        (left, right) => {
            let hash = internal_hash(algorithm, &left.hash(), &right.hash());
            Node::Internal {
                left: Box::new(left),
                right: Box::new(right),
                hash,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALGORITHM: HashAlgorithm = HashAlgorithm::Sha256;

    fn h(n: u64) -> Hash {
        ALGORITHM.digest(&n.to_le_bytes())
    }

    /// Raw value bytes of test value `n`; the tree stores their hash.
    fn value(n: u64) -> [u8; 8] {
        (n + 1_000_000).to_le_bytes()
    }

    fn tree_of(pairs: &[(u64, u64)]) -> SparseMerkleTree {
        let mut tree = SparseMerkleTree::new(ALGORITHM);
        tree.update(
            pairs
                .iter()
                .map(|(k, v)| (h(*k), Some(ALGORITHM.digest(&value(*v)))))
                .collect(),
        );
        tree
    }

    #[test]
    fn root_depends_only_on_contents() {
        let all: Vec<(u64, u64)> = (0..500).map(|i| (i, i * 7)).collect();
        let at_once = tree_of(&all);
        let mut one_by_one = SparseMerkleTree::new(ALGORITHM);
        for (k, v) in all.iter().rev() {
            one_by_one.update(vec![(h(*k), Some(ALGORITHM.digest(&value(*v))))]);
        }
        assert_eq!(at_once.root(), one_by_one.root());
        assert_eq!(at_once.len(), 500);
        // Insert extra keys, then delete them: back to the same root.
        let mut grown = tree_of(&all);
        grown.update((1000..1100).map(|k| (h(k), Some(h(k)))).collect());
        assert_ne!(grown.root(), at_once.root());
        grown.update((1000..1100).map(|k| (h(k), None)).collect());
        assert_eq!(grown.root(), at_once.root());
        // Delete everything: the empty root.
        grown.update((0..500).map(|k| (h(k), None)).collect());
        assert_eq!(grown.root(), Hash::ZERO);
        assert_eq!(grown.len(), 0);
    }

    #[test]
    fn value_change_changes_root() {
        let tree = tree_of(&[(1, 1), (2, 2)]);
        let changed = tree_of(&[(1, 1), (2, 3)]);
        assert_ne!(tree.root(), changed.root());
    }

    #[test]
    fn large_parallel_batch_matches_sequential() {
        let pairs: Vec<(u64, u64)> = (0..10_000).map(|i| (i, i)).collect();
        let parallel = tree_of(&pairs);
        let mut sequential = SparseMerkleTree::new(ALGORITHM);
        for chunk in pairs.chunks(100) {
            sequential.update(
                chunk
                    .iter()
                    .map(|(k, v)| (h(*k), Some(ALGORITHM.digest(&value(*v)))))
                    .collect(),
            );
        }
        assert_eq!(parallel.root(), sequential.root());
    }

    #[test]
    fn proofs_of_membership_and_absence() {
        let tree = tree_of(&(0..300).map(|i| (i, i)).collect::<Vec<_>>());
        let root = tree.root();
        for k in [0u64, 17, 299] {
            let key = k.to_le_bytes();
            let proof = tree.prove(&h(k));
            assert!(proof.verify(ALGORITHM, &root, &key, Some(&value(k))));
            assert!(
                !proof.verify(ALGORITHM, &root, &key, Some(&value(k + 1))),
                "wrong value"
            );
            assert!(!proof.verify(ALGORITHM, &root, &key, None), "present key proven absent");
        }
        for k in [300u64, 12345] {
            let proof = tree.prove(&h(k));
            assert!(proof.verify(ALGORITHM, &root, &k.to_le_bytes(), None));
            assert!(!proof.verify(ALGORITHM, &root, &k.to_le_bytes(), Some(&value(1))));
        }
        let mut forged = tree.prove(&h(3));
        if let Some(first) = forged.siblings.first_mut() {
            first.0[0] ^= 1;
        }
        assert!(!forged.verify(ALGORITHM, &root, &3u64.to_le_bytes(), Some(&value(3))));
    }
}
