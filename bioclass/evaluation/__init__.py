"""Evaluation: classification metrics and batched inference over labelled clips; thresholds;
event matching against truth tables; and evaluation against annotation tables at the window,
event and recording level with bootstrap intervals over recordings (`annotated`)."""
