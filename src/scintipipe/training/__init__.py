"""Training: recipes, labelled data sets, augmentation, the loop, and bundle output."""
