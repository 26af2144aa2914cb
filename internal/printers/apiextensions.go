package printers

func init() {
	registerCreatedAt("CustomResourceDefinition")
}
