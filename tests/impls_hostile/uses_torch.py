"""Not from scratch: relu through torch's own autograd."""
from __future__ import annotations

import torch


def relu_forward(x):
    tensor = torch.tensor(x, requires_grad=True)
    out = torch.relu(tensor)
    return out.detach().numpy(), (tensor, out)


def relu_backward(dout, cache):
    tensor, out = cache
    out.backward(torch.tensor(dout))
    return tensor.grad.numpy()
