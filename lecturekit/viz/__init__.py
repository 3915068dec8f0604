"""Visual toolkit: storyboards, timelines, curves, confusion matrices, attention maps, widgets.

Every plotting function returns a matplotlib Figure (outside pyplot: it shows once, when it is
the cell's last expression) in one course style (:func:`course_style`, modest dpi).

    style     course_style, use_course_style, COURSE_RC, new_figure, to_numpy_video
    video     storyboard, video_player, cam_overlay, attention_over_space, counterfactual_storyboard
    plots     action_timeline, anticipation_plot, observed_fraction_curves, confusion_matrix,
              attention_over_time, plot_dependency_matrix, gradient_norm_plot,
              params_flops_plot, early_recognition_figure
    tables    param_table, ParamTable (parameter / FLOP tables of models)
    live      plot_history, LiveCurves (the live training-curves callback of train.fit)
    widgets   clip_scrubber, early_recognition_explorer, anticipation_explorer (ipywidgets)
    diagrams  fusion_diagram, shift_diagram, two_stream_diagram, ata_diagram (architecture diagrams drawn with matplotlib)

Figures for single lessons live in their own modules (``viz.aga``, ``viz.anticipation``,
``viz.early``, ``viz.horst``), imported by name.

Names load lazily: ``import lecturekit.viz`` imports neither matplotlib nor ipywidgets until a
name is used.
"""

import importlib as _importlib

# --- every name -> the submodule that defines it ---
_LAZY = {
    "COURSE_RC": "style", "course_style": "style", "use_course_style": "style", "new_figure": "style", "to_numpy_video": "style",
    "figure_png": "style", "class_color": "style",
    "storyboard": "video", "video_player": "video", "cam_overlay": "video", "attention_over_space": "video",
    "frame_indices": "video", "counterfactual_storyboard": "video",
    "action_timeline": "plots", "anticipation_plot": "plots", "observed_fraction_curves": "plots",
    "confusion_matrix": "plots", "attention_over_time": "plots", "plot_dependency_matrix": "plots",
    "gradient_norm_plot": "plots", "params_flops_plot": "plots", "segments_from_labels": "plots",
    "early_recognition_figure": "plots",
    "param_table": "tables", "ParamTable": "tables",
    "plot_history": "live", "LiveCurves": "live",
    "clip_scrubber": "widgets", "early_recognition_explorer": "widgets", "anticipation_explorer": "widgets",
    "topk_table": "widgets",
    "fusion_diagram": "diagrams", "shift_diagram": "diagrams", "two_stream_diagram": "diagrams", "ata_diagram": "diagrams",
}

def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lecturekit.viz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
