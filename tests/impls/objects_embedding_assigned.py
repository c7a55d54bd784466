"""An Embedding class whose weight gradient is assigned, not accumulated, over repeated indices."""
import numpy as np


class Embedding:
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        self.weight = np.zeros((num_embeddings, embedding_dim))
        self.padding_idx = padding_idx

    def forward(self, indices):
        self.indices = indices
        return self.weight[indices]

    def backward(self, dout):
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_weight[self.indices] = dout  # the last occurrence of a repeated index wins
        if self.padding_idx is not None:
            self.grad_weight[self.padding_idx] = 0
