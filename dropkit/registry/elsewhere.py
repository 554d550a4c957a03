"""Experimental statements of the paper that this book cannot test, each with the reason."""

from __future__ import annotations

from dropkit.claims import NotTestable
from dropkit.registry import Claim

CLAIMS = (
    Claim("imagenet-drop", "On ImageNet, Random+DRoP beats EL2N-based protocols (Figure 12)",
          "ResNet-50 on ImageNet with EL2N as Strategy", "Appendix D, Figure 12 (caption)",
          "average and robustness metrics against density, ResNet-50 on ImageNet", "0.1-0.9",
          NotTestable("needs ImageNet (1.28 M images, not installable offline here) and about a GPU-month "
                      "of ResNet-50 training; the CIFAR/ImageNet profiles (`paper`, `fast`) run it where the data "
                      "and GPUs exist"), None),
    Claim("du-imagenet", "Dynamic Uncertainty's average-accuracy lead on ImageNet",
          "Dynamic Uncertainty with VGG-19 on CIFAR-100 and ResNet-50 on ImageNet presents a particularly "
          "interesting and instructive case", "Section 2, Figure 1",
          "average and worst-class accuracy, ResNet-50 on ImageNet", "0.1-0.9",
          NotTestable("needs ImageNet; the analogous claims on Fashion-MNIST are chapter 02's du-best-accuracy "
                      "and du-worst-class"), None),
    Claim("waterbirds-real", "The group-robustness results on the real Waterbirds",
          "We use the original learning setup introduced by Sagawa* et al. (2020)", "Section 4, Figure 9",
          "worst-group accuracy, ImageNet-pretrained ResNet-50 on Waterbirds", "0.1-0.9",
          NotTestable("needs the Waterbirds images and ImageNet-pretrained weights (no download here); chapter 06 "
                      "tests the same claims on a spurious-cue Fashion-MNIST"), None),
)
