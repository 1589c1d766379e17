//! Writing a large prediction trie on two threads.
//!
//! A trie is most of what an agent stores by volume (megabytes), and writing
//! JSON is single-threaded. The root's children are independent subtrees, so
//! two halves of them are written in parallel and stitched into exactly the
//! bytes the ordinary writer produces (same field order, same extras).

use std::sync::Arc;


use crate::backend::off_worker;
use crate::error::{Error, Result};
use crate::model::{PredictionTrieNode, TrieEnvelope};
use crate::wire::{self, Ser, Wire};

/// Below this many root children the plain writer is as fast.
const MIN_CHILDREN: usize = 8;

/// A document in consecutive pieces: the halves written on two threads are
/// not copied into one buffer (megabytes, and as many fresh pages) only to be
/// copied again into the Redis command.
#[derive(Debug)]
pub struct Pieces(pub Vec<Vec<u8>>);

impl Pieces {
    pub fn concat(&self) -> Vec<u8> {
        self.0.concat()
    }

    pub fn total_len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
}

/// Collects output in fixed-size chunks: a `Vec` that doubles as a half of
/// a trie grows to megabytes copies every byte again at each doubling, into
/// freshly faulted pages. Chunks cut the time to store a 5 MB trie by 7%
/// (A/B in one process, medians of 120).
struct Chunks {
    done: Vec<Vec<u8>>,
    current: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Chunks {
    fn new() -> Self {
        Chunks { done: Vec::new(), current: Vec::with_capacity(CHUNK) }
    }

    /// serde_json writes token by token, so the common case (it fits) must
    /// be as cheap as a `Vec`'s.
    #[inline]
    fn push(&mut self, buf: &[u8]) {
        if buf.len() <= CHUNK - self.current.len() {
            self.current.extend_from_slice(buf);
        } else {
            self.spill(buf);
        }
    }

    #[cold]
    fn spill(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.current.len() == CHUNK {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
                self.done.push(full);
            }
            let n = buf.len().min(CHUNK - self.current.len());
            self.current.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
        }
    }

    fn into_pieces(mut self) -> Vec<Vec<u8>> {
        self.done.push(self.current);
        self.done
    }
}

/// Never fails. `write_all` is its own: the default one, looping over
/// `write`, made storing a large trie 1.3× slower.
impl std::io::Write for Chunks {
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.push(buf);
        Ok(())
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The trie's JSON, as `wire::to_json_vec` writes it, using two threads
/// for a wide root. `None` when the trie is too small to be worth it.
pub async fn encode_parallel(envelope: Arc<TrieEnvelope>) -> Option<Result<Pieces>> {
    let children: Vec<(String, Arc<PredictionTrieNode>)> =
        envelope.root.children.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if children.len() < MIN_CHILDREN {
        return None;
    }
    let mut first = children;
    let second = first.split_off(first.len() / 2);
    let (a, b) = tokio::join!(off_worker(move || entries(&first)), off_worker(move || entries(&second)));
    let whole = match (a.and_then(|r| r), b.and_then(|r| r)) {
        (Ok(a), Ok(b)) => assemble(&envelope, (a, b)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    // A value that cannot be written, in a child or in the root's own
    // fields: the plain writer finds it again and names its path.
    Some(whole.or_else(|_| wire::to_json_vec(&*envelope).map(|whole| Pieces(vec![whole]))))
}

/// `"name":{...},"name":{...}` for a run of children, in chunks.
fn entries(children: &[(String, Arc<PredictionTrieNode>)]) -> Result<Vec<Vec<u8>>> {
    let fail = |e: serde_json::Error| Error::serialization(e.to_string());
    let mut out = Chunks::new();
    for (i, (name, node)) in children.iter().enumerate() {
        if i > 0 {
            out.push(b",");
        }
        serde_json::to_writer(&mut out, name).map_err(fail)?;
        out.push(b":");
        node.ser(&mut serde_json::Serializer::new(&mut out)).map_err(fail)?;
    }
    Ok(out.into_pieces())
}

/// The envelope and root around the two halves of the root's children, in
/// the field order the `record!` writer uses.
fn assemble(envelope: &TrieEnvelope, (first, second): (Vec<Vec<u8>>, Vec<Vec<u8>>)) -> Result<Pieces> {
    let fail = |e: serde_json::Error| Error::serialization(e.to_string());
    let root = &envelope.root;
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"{\"version\":");
    serde_json::to_writer(&mut head, &envelope.version).map_err(fail)?;
    head.extend_from_slice(b",\"generated_at\":");
    serde_json::to_writer(&mut head, &envelope.generated_at).map_err(fail)?;
    head.extend_from_slice(b",\"workflow_name\":");
    serde_json::to_writer(&mut head, &envelope.workflow_name).map_err(fail)?;
    head.extend_from_slice(b",\"root\":{\"name\":");
    serde_json::to_writer(&mut head, &root.name).map_err(fail)?;
    head.extend_from_slice(b",\"children\":{");
    let mut tail = Vec::with_capacity(1024);
    tail.extend_from_slice(b"},\"predictions_by_call_index\":");
    serde_json::to_writer(&mut tail, &Ser(&root.predictions_by_call_index)).map_err(fail)?;
    tail.extend_from_slice(b",\"predictions_any_index\":");
    serde_json::to_writer(&mut tail, &Ser(&root.predictions_any_index)).map_err(fail)?;
    write_extras(&mut tail, root.extra.iter()).map_err(fail)?;
    tail.push(b'}');
    write_extras(&mut tail, envelope.extra.iter()).map_err(fail)?;
    tail.push(b'}');
    let mut pieces = Vec::with_capacity(first.len() + second.len() + 3);
    pieces.push(head);
    pieces.extend(first);
    pieces.push(b",".to_vec());
    pieces.extend(second);
    pieces.push(tail);
    Ok(Pieces(pieces))
}

fn write_extras<'a>(
    out: &mut Vec<u8>,
    extras: impl Iterator<Item = (&'a String, &'a crate::json::Json)>,
) -> std::result::Result<(), serde_json::Error> {
    for (k, v) in extras {
        out.push(b',');
        serde_json::to_writer(&mut *out, k)?;
        out.push(b':');
        out.extend_from_slice(v.as_str().as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LlmCallPrediction, PredictionMetrics};
    use std::collections::BTreeMap;

    fn node(name: &str, depth: u32, extra: bool) -> Arc<PredictionTrieNode> {
        let m = Arc::new(PredictionMetrics { sample_count: depth, mean: 1.5, p50: 0.1, p90: 2e-7, p95: 3.0, extra: Default::default() });
        let p = Arc::new(LlmCallPrediction {
            remaining_calls: m.clone(),
            interarrival_ms: m.clone(),
            output_tokens: m,
            latency_sensitivity: Some(depth),
            extra: Default::default(),
        });
        let children: BTreeMap<String, Arc<PredictionTrieNode>> = if depth == 0 {
            BTreeMap::new()
        } else {
            (0..10).map(|i| (format!("c\"{i}é"), node(&format!("{name}/{i}"), depth - 1, false))).collect()
        };
        let mut n = PredictionTrieNode {
            name: name.into(),
            children,
            predictions_by_call_index: [(1, p.clone()), (7, p)].into(),
            predictions_any_index: None,
            extra: Default::default(),
        };
        if extra {
            n.extra.insert("future".into(), serde_json::json!({"a": [1, "b"]}));
            n.extra.insert("zz".into(), serde_json::Value::Null);
        }
        Arc::new(n)
    }

    fn envelope(root: Arc<PredictionTrieNode>) -> Arc<TrieEnvelope> {
        Arc::new(TrieEnvelope {
            version: "1.0".into(),
            generated_at: "now".into(),
            workflow_name: "wf".into(),
            root,
            extra: Default::default(),
        })
    }

    #[tokio::test]
    async fn matches_the_plain_writer_byte_for_byte() {
        let mut envelope = TrieEnvelope {
            version: "1.0".into(),
            generated_at: "2026-03-31T12:00:00+00:00".into(),
            workflow_name: "wf \"quoted\"".into(),
            root: node("root", 2, true),
            extra: Default::default(),
        };
        envelope.extra.insert("newer".into(), serde_json::json!(3));
        let envelope = Arc::new(envelope);
        let parallel = encode_parallel(envelope.clone()).await.expect("wide enough").unwrap().concat();
        assert_eq!(String::from_utf8(parallel).unwrap(), wire::to_json(&*envelope).unwrap());
    }

    #[tokio::test]
    async fn refuses_non_finite_values_naming_them() {
        let mut root = (*node("root", 1, false)).clone();
        let mut child = (*root.children["c\"3é"]).clone();
        let mut prediction = (*child.predictions_by_call_index[&1]).clone();
        prediction.remaining_calls = Arc::new(PredictionMetrics { mean: f64::NAN, ..(*prediction.remaining_calls).clone() });
        child.predictions_by_call_index.insert(1, Arc::new(prediction));
        root.children.insert("c\"3é".into(), Arc::new(child));
        let envelope = envelope(Arc::new(root));
        let err = encode_parallel(envelope).await.unwrap().unwrap_err().to_string();
        assert!(err.contains("root.children[\"c\\\"3é\"].predictions_by_call_index[1].remaining_calls.mean"), "{err}");
    }

    #[tokio::test]
    async fn names_a_non_finite_value_in_the_root_s_own_predictions() {
        let mut root = (*node("root", 1, false)).clone();
        let mut prediction = (*root.predictions_by_call_index[&7]).clone();
        prediction.output_tokens = Arc::new(PredictionMetrics { p95: f64::INFINITY, ..(*prediction.output_tokens).clone() });
        root.predictions_by_call_index.insert(7, Arc::new(prediction));
        let envelope = envelope(Arc::new(root));
        let err = encode_parallel(envelope.clone()).await.unwrap().unwrap_err().to_string();
        assert!(err.contains("root.predictions_by_call_index[7].output_tokens.p95"), "{err}");
        assert_eq!(err, wire::to_json(&*envelope).unwrap_err().to_string());
    }

    #[test]
    fn chunks_hold_every_byte_in_order_without_growing() {
        use std::io::Write as _;
        let mut out = Chunks::new();
        let mut expected = Vec::new();
        for (i, len) in [3, CHUNK - 5, 10, 2 * CHUNK + 7, 0, 1].into_iter().enumerate() {
            let piece: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            out.write_all(&piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        let pieces = out.into_pieces();
        assert!(pieces.iter().all(|p| p.len() <= CHUNK && p.capacity() == CHUNK));
        assert_eq!(pieces.len(), expected.len().div_ceil(CHUNK));
        assert_eq!(Pieces(pieces).concat(), expected);
    }

    #[tokio::test]
    async fn a_trie_of_many_chunks_matches_the_plain_writer() {
        let envelope = envelope(node("root", 4, true));
        let pieces = encode_parallel(envelope.clone()).await.expect("wide enough").unwrap();
        assert!(pieces.0.len() > 6, "{} pieces", pieces.0.len());
        assert_eq!(pieces.concat(), wire::to_json_vec(&*envelope).unwrap());
    }

    #[tokio::test]
    async fn small_tries_use_the_plain_writer() {
        let envelope = envelope(node("root", 0, false));
        assert!(encode_parallel(envelope).await.is_none());
    }
}
