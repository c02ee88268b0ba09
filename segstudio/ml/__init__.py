"""Models, weights, predictor, dense CRF, datasets and trainer. torch lives here; never Qt."""
