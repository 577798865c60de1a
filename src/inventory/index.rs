//! The inventory's images by ID: the one lookup from an image ID to its position that the
//! parent check, the planner's graph and the executor share.
//!
//! A sorted array rather than a hash map: 12 bytes per image instead of ≈ 64 (a map of
//! 10 000 IDs takes ≈ 650 KB), and it is built once per listing. A lookup is a binary
//! search over the IDs' first 8 bytes (contiguous, so mostly in cache), then a comparison
//! of the whole ID.

use super::{Image, ImageId};

/// Positions of the images of one inventory, by ID.
pub struct IdIndex<'i> {
    images: &'i [Image],
    /// The first 8 bytes of each image's ID, ascending (equal keys by position).
    keys: Vec<u64>,
    /// The position in `images` of the image each key comes from.
    positions: Vec<u32>,
}

/// The first 8 bytes of an ID, as a number that orders like them.
fn key(id: &ImageId) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_be_bytes(head)
}

impl<'i> IdIndex<'i> {
    /// Index `images`. Inventories never reach 4 billion images; the images past that would
    /// be unknown to the index (never found), not confused with others.
    pub fn new(images: &'i [Image]) -> Self {
        let mut pairs: Vec<(u64, u32)> = (0..u32::MAX)
            .zip(images)
            .map(|(n, image)| (key(&image.id), n))
            .collect();
        pairs.sort_unstable();
        let (keys, positions) = pairs.into_iter().unzip();
        Self {
            images,
            keys,
            positions,
        }
    }

    /// The position of the image with this ID. Should a listing name an ID twice, the last
    /// one listed (as inserting them in order into a map would keep).
    pub fn position(&self, id: &ImageId) -> Option<usize> {
        let k = key(id);
        let first = self.keys.partition_point(|&x| x < k);
        let equal = self.keys[first..].partition_point(|&x| x == k);
        self.positions[first..first + equal]
            .iter()
            .rev()
            .filter_map(|&n| usize::try_from(n).ok())
            .find(|&n| self.images.get(n).is_some_and(|image| image.id == *id))
    }

    /// The image with this ID and its position.
    pub fn image(&self, id: &ImageId) -> Option<(usize, &'i Image)> {
        let n = self.position(id)?;
        Some((n, self.images.get(n)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{fake_id, image};

    /// An ID whose first 8 bytes are `head` and whose last byte is `tail`.
    fn id_with(head: u8, tail: u8) -> ImageId {
        let mut bytes = [head; 32];
        bytes[31] = tail;
        ImageId::from_bytes(bytes)
    }

    fn with_id(id: ImageId) -> Image {
        let mut im = image("x").build();
        im.id = id;
        im
    }

    #[test]
    fn finds_every_image_and_nothing_else() {
        let images: Vec<Image> = (0..500).map(|k| image(&format!("i{k}")).build()).collect();
        let index = IdIndex::new(&images);
        for (n, im) in images.iter().enumerate() {
            assert_eq!(index.position(&im.id), Some(n));
        }
        assert_eq!(index.position(&fake_id("absent")), None);
        assert_eq!(IdIndex::new(&[]).position(&fake_id("i0")), None);
    }

    #[test]
    fn ids_that_share_their_first_bytes_are_told_apart_by_the_rest() {
        let images: Vec<Image> = [3, 1, 2].iter().map(|&t| with_id(id_with(7, t))).collect();
        let index = IdIndex::new(&images);
        assert_eq!(index.position(&id_with(7, 1)), Some(1));
        assert_eq!(index.position(&id_with(7, 2)), Some(2));
        assert_eq!(index.position(&id_with(7, 3)), Some(0));
        assert_eq!(index.position(&id_with(7, 4)), None);
        assert_eq!(index.position(&id_with(6, 1)), None);
    }

    #[test]
    fn an_id_listed_twice_is_found_at_its_last_position() {
        let images = vec![
            with_id(id_with(1, 1)),
            with_id(id_with(2, 2)),
            with_id(id_with(1, 1)),
        ];
        let index = IdIndex::new(&images);
        assert_eq!(index.position(&id_with(1, 1)), Some(2));
        assert_eq!(index.image(&id_with(2, 2)).map(|(n, _)| n), Some(1));
    }
}
