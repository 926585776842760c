"""Assembly helpers shared by the app and the public backend helpers."""
