//! The scan-station camera opened through OpenCV's `VideoCapture`: a device index or a
//! stream URL, the same code for a real camera and for the simulator's MJPEG stream.

#[cfg(feature = "opencv")]
mod capture;

#[cfg(feature = "opencv")]
pub use capture::OpenCvCamera;

#[cfg(feature = "opencv")]
pub use capture::{load_grey, png_with_mark};
