"""Neural fields: an encoding plus small MLPs."""
