from keras_pixelcnn.models.pixelcnn import build_pixelcnn

__all__ = ["build_pixelcnn"]
