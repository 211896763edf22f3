"""RGB video action recognition: the thesis's RGB baseline (Ch. 6/7 tables) on EPIC-KITCHENS-100 and
Something-Something V2 / Something-Else. The distillation and layout tasks build on its data and models
through the registry."""
