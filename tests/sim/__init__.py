"""The MuJoCo simulator: model, world, terrains, course, randomisation."""
