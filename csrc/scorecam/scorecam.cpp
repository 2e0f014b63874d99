// Score-CAM masks: argument checks, row layout and the CPU registration.
#include "scorecam.h"

#include <torch/library.h>

namespace rtool::scorecam {
namespace {

MaskMode parse_mode(const std::string& mode) {
  if (mode == "parity") return MaskMode::kParity;
  if (mode == "minmax") return MaskMode::kMinMax;
  TORCH_CHECK(false, "rtool.scorecam_masks: mode must be 'parity' or 'minmax', got '", mode, "'");
}

bool wants_channels_last(const at::Tensor& images) {
  return !images.is_contiguous() && images.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

MaskProblem prepare_masks(const at::Tensor& images, const at::Tensor& activations,
                          const std::string& mode, const std::optional<at::Tensor>& channels,
                          double eps) {
  TORCH_CHECK(images.dim() == 4, "rtool.scorecam_masks: images must be 4-D [B, C_in, H, W], got shape ",
              images.sizes());
  TORCH_CHECK(activations.dim() == 4,
              "rtool.scorecam_masks: activations must be 4-D [B, C, h, w], got shape ", activations.sizes());
  TORCH_CHECK(images.is_floating_point(), "rtool.scorecam_masks: images must be floating point, got ",
              images.scalar_type());
  TORCH_CHECK(activations.is_floating_point(),
              "rtool.scorecam_masks: activations must be floating point, got ", activations.scalar_type());
  TORCH_CHECK(images.size(0) == activations.size(0), "rtool.scorecam_masks: images has batch size ",
              images.size(0), " but activations has batch size ", activations.size(0));
  TORCH_CHECK(images.device() == activations.device(), "rtool.scorecam_masks: images are on ",
              images.device(), " but activations are on ", activations.device());
  TORCH_CHECK(activations.size(2) > 0 && activations.size(3) > 0,
              "rtool.scorecam_masks: activations must have h, w > 0, got shape ", activations.sizes());
  TORCH_CHECK(eps >= 0, "rtool.scorecam_masks: eps must be >= 0, got ", eps);

  const int64_t batch = images.size(0);
  const int64_t num_channels = activations.size(1);
  const auto index_options = images.options().dtype(at::kLong);
  at::Tensor row_image, row_channel;
  if (!channels.has_value()) {
    row_image = at::arange(batch, index_options).repeat_interleave(num_channels);
    row_channel = at::arange(num_channels, index_options).repeat({batch});
  } else {
    const at::Tensor& index = *channels;
    TORCH_CHECK(index.scalar_type() == at::kLong, "rtool.scorecam_masks: channels must be int64, got ",
                index.scalar_type());
    TORCH_CHECK(index.device() == images.device(), "rtool.scorecam_masks: channels are on ", index.device(),
                " but images are on ", images.device());
    if (index.dim() == 1) {
      row_image = at::arange(batch, index_options).repeat_interleave(index.numel());
      row_channel = index.contiguous().repeat({batch});
    } else {
      TORCH_CHECK(index.dim() == 2 && index.size(1) == 2,
                  "rtool.scorecam_masks: channels must be 1-D [K] channel ids or 2-D [N, 2] (image, channel) "
                  "pairs, got shape ", index.sizes());
      row_image = index.select(1, 0).contiguous();
      row_channel = index.select(1, 1).contiguous();
      if (row_image.numel() > 0) {
        const int64_t lo = row_image.min().item<int64_t>(), hi = row_image.max().item<int64_t>();
        TORCH_CHECK(lo >= 0 && hi < batch, "rtool.scorecam_masks: channels holds image index ",
                    (lo < 0 ? lo : hi), ", out of range for a batch of ", batch, " images");
      }
    }
    if (row_channel.numel() > 0) {
      const int64_t lo = row_channel.min().item<int64_t>(), hi = row_channel.max().item<int64_t>();
      TORCH_CHECK(lo >= 0 && hi < num_channels, "rtool.scorecam_masks: channels holds channel index ",
                  (lo < 0 ? lo : hi), ", out of range for activations with ", num_channels, " channels");
    }
  }

  const bool channels_last = wants_channels_last(images);
  const auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const int64_t rows = row_image.numel();
  MaskProblem problem{
      images.contiguous(layout),
      activations.to(at::kFloat).contiguous(),
      row_image,
      row_channel,
      at::empty({rows, images.size(1), images.size(2), images.size(3)}, images.options(), layout),
      at::empty({rows}, images.options().dtype(at::kFloat)),
      parse_mode(mode),
      eps,
      channels_last,
  };
  return problem;
}

namespace {

std::tuple<at::Tensor, at::Tensor> scorecam_masks_cpu(const at::Tensor& images, const at::Tensor& activations,
                                                      c10::string_view mode,
                                                      const std::optional<at::Tensor>& channels, double eps) {
  MaskProblem problem = prepare_masks(images, activations, std::string(mode), channels, eps);
  scorecam_masks_cpu_kernel(problem);
  return {problem.masked, problem.ranges};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CPU, m) { m.impl("scorecam_masks", &scorecam_masks_cpu); }

}  // namespace rtool::scorecam
