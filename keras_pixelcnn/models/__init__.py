from keras_pixelcnn.models.gated_pixelcnn import build_gated_pixelcnn
from keras_pixelcnn.models.pixelcnn import build_pixelcnn
from keras_pixelcnn.models.pixelcnn_pp import build_pixelcnn_pp

__all__ = ["build_gated_pixelcnn", "build_pixelcnn", "build_pixelcnn_pp"]
