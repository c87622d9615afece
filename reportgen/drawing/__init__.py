"""Drawing helpers shared by the sections: colours, text in pictures, browser-safe video."""
