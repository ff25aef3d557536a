"""Face detection with the zoo's detectors: S3FD priors, box coding, matching and loss, data
(WIDER FACE, synthetic faces), training, post-processing and WIDER FACE evaluation."""
