package membership

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretName is the Secret holding the gossip encryption key, in Vigil's namespace.
const SecretName = "vigil-memberlist"

const secretKey = "key"

// EnsureKey returns the gossip key from the Secret, creating the Secret with a random
// 32-byte (AES-256) key when it is absent. The controller calls it.
func EnsureKey(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	key, err := ReadKey(ctx, c, namespace)
	if err == nil || !apierrors.IsNotFound(err) {
		return key, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: namespace}, Data: map[string][]byte{secretKey: key}}
	if err := c.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ReadKey(ctx, c, namespace)
		}
		return nil, fmt.Errorf("creating Secret %s/%s: %w", namespace, SecretName, err)
	}
	return key, nil
}

// ReadKey reads the gossip key. Agents call it.
func ReadKey(ctx context.Context, c client.Reader, namespace string) ([]byte, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SecretName}, &s); err != nil {
		return nil, err
	}
	key := s.Data[secretKey]
	if len(key) != 16 && len(key) != 24 && len(key) != 32 {
		return nil, fmt.Errorf("secret %s/%s: key must be 16, 24 or 32 bytes, not %d", namespace, SecretName, len(key))
	}
	return key, nil
}
