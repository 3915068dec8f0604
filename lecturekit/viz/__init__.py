"""Visual toolkit: storyboards, timelines, curves, confusion matrices, attention maps, widgets.

Every plotting function returns a matplotlib Figure (outside pyplot: it shows once, when it is
the cell's last expression) in one course style (:func:`course_style`, modest dpi).

    style     course_style, use_course_style, COURSE_RC, new_figure, to_numpy_video
    video     storyboard, video_player, cam_overlay, attention_over_space, counterfactual_storyboard
    plots     action_timeline, anticipation_plot, observed_fraction_curves, confusion_matrix,
              attention_over_time, dependency_matrix, gradient_norm_plot, param_table,
              params_flops_plot, early_recognition_figure
    live      plot_history, LiveCurves (the live training-curves callback of train.fit)
    widgets   clip_scrubber, early_recognition_explorer, anticipation_explorer (ipywidgets)
    diagrams  fusion_diagram, shift_diagram, two_stream_diagram, ata_diagram (architecture diagrams drawn with matplotlib)

Names load lazily: ``import lecturekit.viz`` imports neither matplotlib nor ipywidgets until a
name is used.
"""

import importlib as _importlib

# --- toolkit names -> submodule (issue: training, evaluation and visual toolkit) ---
_LAZY = {
    "COURSE_RC": "style", "course_style": "style", "use_course_style": "style", "new_figure": "style", "to_numpy_video": "style",
    "figure_png": "style", "class_color": "style",
    "storyboard": "video", "video_player": "video", "cam_overlay": "video", "attention_over_space": "video",
    "frame_indices": "video",
    "action_timeline": "plots", "anticipation_plot": "plots", "observed_fraction_curves": "plots",
    "confusion_matrix": "plots", "confusion_counts": "plots", "attention_over_time": "plots",
    "dependency_matrix": "plots", "gradient_norm_plot": "plots", "param_table": "plots", "ParamTable": "plots",
    "params_flops_plot": "plots", "segments_from_labels": "plots",
    "plot_history": "live", "LiveCurves": "live",
    "clip_scrubber": "widgets", "early_recognition_explorer": "widgets", "anticipation_explorer": "widgets",
    "topk_table": "widgets",
}
# --- further viz names (other issues) ---
_LAZY["fusion_diagram"] = "diagrams"   # architecture diagram of the fusion networks (notebook 02)
_LAZY["shift_diagram"] = "diagrams"    # TSM's temporal shift, before and after (notebook 04)
_LAZY["two_stream_diagram"] = "diagrams"   # RGB stream + motion stream, late fusion (notebook 05)
_LAZY["ata_diagram"] = "diagrams"      # ATA: align - attend - de-align (notebook 06)
_LAZY["counterfactual_storyboard"] = "video"   # the past evidence an AGA counterfactual search changed
_LAZY["early_recognition_figure"] = "plots"    # MS-LSTM Fig. 5 / Fig. 6: accuracy vs observed fraction per loss


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lecturekit.viz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
