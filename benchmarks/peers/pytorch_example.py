"""PyTorch's VAE example (github.com/pytorch/examples, ``vae/main.py``), in plain PyTorch.

Re-implemented from its published code: ``fc1`` 784->400 (ReLU), heads ``fc21``/``fc22``
400->20, decoder ``fc3`` 20->400 (ReLU), ``fc4`` 400->784 with a sigmoid; Adam(lr=1e-3),
batch 128, loss = ``binary_cross_entropy(reduction="sum")`` + KLD summed over the batch (so the
gradient is the batch *sum*, as in the example). The training loop is the example's
(``zero_grad``, forward, loss, ``backward``, ``loss.item()``, ``step``); only its torchvision
``DataLoader`` (per-image PIL decoding and ``ToTensor``) is replaced by shuffled slices of an
in-memory tensor, so the comparison times the model step, not PIL.
"""

import torch
from torch import nn, optim
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """Reconstruction + KL divergence losses summed over all elements and batch."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train(model, x_train, epochs, batch_size, clock, seed=1, device="cpu", epoch_data=None):
    """The example's training loop over shuffled in-memory batches; marks ``clock`` per step.

    ``epoch_data``, if given, replaces the shuffling: ``epoch_data(epoch)`` returns that epoch's
    examples already in their order (``benchmarks.quality`` gives every row the same order and
    the same binarisation draws), taken in consecutive batches; ``x_train`` is then unused.
    The step itself (loss, ``backward``, ``Adam``) is the same either way.
    """
    torch.manual_seed(seed)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    data = None if epoch_data is not None else torch.from_numpy(x_train).to(device)
    model.train()
    clock.begin()
    for epoch in range(epochs):
        if epoch_data is None:
            order = torch.randperm(len(data), device=device)
        else:  # the same gather of a batch as the shuffled order's
            data = torch.from_numpy(epoch_data(epoch)).to(device)
            order = torch.arange(len(data), device=device)
        steps_per_epoch = len(data) // batch_size
        for batch_idx in range(steps_per_epoch):
            clock.mark(epoch * steps_per_epoch + batch_idx)
            batch = data[order[batch_idx * batch_size : (batch_idx + 1) * batch_size]]
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(batch)
            loss = loss_function(recon_batch, batch, mu, logvar)
            loss.backward()
            train_loss = loss.item()  # the example accumulates this every step
            optimizer.step()
    if device != "cpu":
        torch.cuda.synchronize()
    clock.finish()
    return train_loss / batch_size


def build(arch="mlp", device="cpu"):
    """Returns ``(model, encode, decode, output)`` for the benchmark worker."""
    if arch != "mlp":
        raise ValueError(f"PyTorch's example is an MLP VAE; received arch={arch!r}")
    model = VAE().to(device)

    def encode(x):
        with torch.no_grad():
            mu, logvar = model.encode(torch.from_numpy(x).to(device))
        return mu.cpu().numpy(), logvar.cpu().numpy()

    def decode(z):
        with torch.no_grad():
            return model.decode(torch.from_numpy(z).to(device)).cpu().numpy()

    return model, encode, decode, "probabilities"


def scorer(model):
    """``(encode, decode, from_logits)`` on torch tensors, for `keras_vae.likelihood`.

    ``decode`` returns ``fc4``'s pre-sigmoid logits (the example's ``decode`` without its final
    ``torch.sigmoid``), so the Bernoulli log-likelihood is computed from logits, not from
    probabilities that can round to exactly 0 or 1. Training is untouched.
    """
    model.eval()

    def encode(x):
        with torch.no_grad():
            return model.encode(x.reshape(-1, 784))

    def decode(z):
        with torch.no_grad():
            return model.fc4(F.relu(model.fc3(z)))

    return encode, decode, True
