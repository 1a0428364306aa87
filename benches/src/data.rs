//! The key/value generator shared by every engine: 24-byte random keys and 150-byte random values
//! (the shape of redb's benchmark pairs) from one fixed seed, so every engine stores the same bytes.

pub const KEY_BYTES: usize = 24;
pub const VALUE_BYTES: usize = 150;
/// The fixed seed of the pair stream; a dataset of n pairs is a prefix of any larger one.
pub const PAIR_SEED: u64 = 0x0aed_b5ee_d000_0001;

/// The simulator's SplitMix64 (`aedb_io::sim`): tiny, fast, deterministic, good enough for
/// benchmark data and access orders.
pub use aedb_pager::io::sim::SplitMix64;

/// Fill `out` from `rng`, eight bytes a draw (little-endian), the last draw cut short.
pub fn fill(rng: &mut SplitMix64, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// `len` uniformly random indices below `n`, from their own seed (one stream per thread).
pub fn random_indices(n: usize, len: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64(seed);
    (0..len).map(|_| rng.below(n as u64) as u32).collect()
}

/// The first `len` pairs of the fixed-seed stream.
pub struct Dataset {
    keys: Vec<[u8; KEY_BYTES]>,
    values: Vec<[u8; VALUE_BYTES]>,
}

impl Dataset {
    pub fn generate(len: usize) -> Self {
        let mut rng = SplitMix64(PAIR_SEED);
        let mut keys = Vec::with_capacity(len);
        let mut values = Vec::with_capacity(len);
        for _ in 0..len {
            let mut key = [0u8; KEY_BYTES];
            let mut value = [0u8; VALUE_BYTES];
            fill(&mut rng, &mut key);
            fill(&mut rng, &mut value);
            keys.push(key);
            values.push(value);
        }
        Dataset { keys, values }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn key(&self, index: u32) -> &[u8] {
        &self.keys[index as usize]
    }

    pub fn pair(&self, index: u32) -> (&[u8], &[u8]) {
        (&self.keys[index as usize], &self.values[index as usize])
    }

    /// Indices `0..len` in generation (random key) order.
    pub fn insertion_order(&self, len: usize) -> Vec<u32> {
        (0..len.min(self.len()) as u32).collect()
    }

    /// Indices `0..len` ordered by key (strictly increasing: the generator never repeats a key
    /// at these sizes, which the load checks).
    pub fn sorted_order(&self, len: usize) -> Vec<u32> {
        let mut order = self.insertion_order(len);
        order.sort_unstable_by(|a, b| self.key(*a).cmp(self.key(*b)));
        order
    }
}

/// A run of pairs of a dataset, by index: what one commit writes.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    data: &'a Dataset,
    indices: &'a [u32],
}

impl<'a> Batch<'a> {
    pub fn new(data: &'a Dataset, indices: &'a [u32]) -> Self {
        Batch { data, indices }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let data = self.data;
        self.indices.iter().map(move |i| data.pair(*i))
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        self.indices.iter().map(move |i| data.key(*i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_prefixes_of_each_other() {
        let small = Dataset::generate(10);
        let large = Dataset::generate(100);
        for i in 0..10 {
            assert_eq!(small.pair(i), large.pair(i));
        }
    }

    /// Every run and session stores the same bytes: the first key as the stream has always
    /// spelled it (three draws from `PAIR_SEED`, little-endian).
    #[test]
    fn the_pair_stream_keeps_its_bytes() {
        let first: String = Dataset::generate(1)
            .key(0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(first, "c603e134e7505958293277081f4ff96df9a04d49a101a2d4");
    }

    #[test]
    fn sorted_order_is_strictly_increasing() {
        let data = Dataset::generate(1000);
        let order = data.sorted_order(1000);
        assert!(order.windows(2).all(|w| data.key(w[0]) < data.key(w[1])));
    }
}
