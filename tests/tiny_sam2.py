"""Shared by the neural-backend tests: a SAM 2.1 config shrunk to a few hundred thousand weights
(the real architecture), torch kept to one thread, and the device the tracker tests use."""

import os

import pytest

# Where the tracker tests run their tiny models: the CPU unless TAM_TEST_DEVICE says
# otherwise (bench/gpu_check.sh sets it to cuda on a GPU machine).
TEST_DEVICE = os.environ.get("TAM_TEST_DEVICE", "cpu")
SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def tiny_sam2_overrides(size=128, dim=32, mem=16, memory_frames=None):
    """A SAM 2.1 config shrunk to a few hundred thousand weights (same architecture)."""
    f = size // 16
    layer = "++model.memory_attention.layer"
    return [
        f"++model.image_size={size}",
        "++model.image_encoder.trunk.embed_dim=8",
        "++model.image_encoder.trunk.stages=[1,1,2,1]",
        "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
        f"++model.image_encoder.neck.d_model={dim}",
        f"++model.image_encoder.neck.position_encoding.num_pos_feats={dim}",
        f"++model.memory_attention.d_model={dim}",
        "++model.memory_attention.num_layers=1",
        f"{layer}.d_model={dim}",
        f"{layer}.dim_feedforward={2 * dim}",
        f"{layer}.self_attention.embedding_dim={dim}",
        f"{layer}.self_attention.feat_sizes=[{f},{f}]",
        f"{layer}.cross_attention.embedding_dim={dim}",
        f"{layer}.cross_attention.feat_sizes=[{f},{f}]",
        f"{layer}.cross_attention.kv_in_dim={mem}",
        f"++model.memory_encoder.out_dim={mem}",
        f"++model.memory_encoder.in_dim={dim}",
        f"++model.memory_encoder.position_encoding.num_pos_feats={mem}",
        f"++model.memory_encoder.mask_downsampler.embed_dim={dim}",
        f"++model.memory_encoder.fuser.layer.dim={dim}",
        "++model.memory_encoder.fuser.num_layers=1",
    ] + ([] if memory_frames is None else [
        f"++model.num_maskmem={memory_frames}",
        f"++model.max_obj_ptrs_in_encoder={memory_frames}",
    ])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared CPU: more intra-op threads only add contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
