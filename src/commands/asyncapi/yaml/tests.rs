use serde_json::json;

use super::*;

#[test]
fn yaml_is_block_style_with_json_scalars() {
    let v = json!({"a": {"b": [1, "x: y", {"c": null}], "on": true, "e": {}}, "$ref": "#/x"});
    let y = to_yaml(&v);
    assert!(
        y.contains("a:\n  b:\n    - 1\n    - \"x: y\"\n    -\n      c: null\n"),
        "{y}"
    );
    assert!(y.contains("  \"on\": true\n"), "{y}");
    assert!(y.contains("  e: {}\n"), "{y}");
    assert!(y.contains("$ref: \"#/x\"\n"), "{y}");
}
